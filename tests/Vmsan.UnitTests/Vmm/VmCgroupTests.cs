using Vmsan.Vmm.Cgroups;

namespace Vmsan.UnitTests.Vmm;

/// <summary>The cgroup writer against a fake cgroupfs tree (plain directories with the control files).</summary>
public sealed class VmCgroupTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("vmsan-cg-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void On_v2_limits_go_to_memory_max_swap_max_cpu_max_and_pids_max()
    {
        File.WriteAllText(Path.Combine(_root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
        Assert.Equal(2, VmCgroup.Probe(_root).Version);
        var cg = VmCgroup.Create("vm-00000001", CgroupLimits.For(1, 256, 160), _root);
        var dir = Path.Combine(_root, "vmsan", "vm-00000001");
        Assert.Equal([dir], cg.State.Paths);
        Assert.Equal((416L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir, "memory.max")));
        Assert.Equal("0", File.ReadAllText(Path.Combine(dir, "memory.swap.max")));
        Assert.Equal("100000 100000", File.ReadAllText(Path.Combine(dir, "cpu.max")));
        Assert.Equal("130", File.ReadAllText(Path.Combine(dir, "pids.max")));
        Assert.Equal("+memory +cpu +pids", File.ReadAllText(Path.Combine(_root, "vmsan", "cgroup.subtree_control")));
        Assert.True(cg.State.SwapOff);
    }

    [Fact]
    public void A_v2_hierarchy_without_the_controllers_is_refused_with_the_reason()
    {
        File.WriteAllText(Path.Combine(_root, "cgroup.controllers"), "");
        var (version, detail) = VmCgroup.Probe(_root);
        Assert.Null(version);
        Assert.Contains("memory, cpu, pids", detail);
        Assert.Equal(Vmsan.Core.Errors.ErrorCode.DependencyMissing, Assert.Throws<Vmsan.Core.Errors.VmsanException>(() => VmCgroup.Create("vm-00000001", CgroupLimits.For(1, 256, 160), _root)).Code);
    }

    [Fact]
    public void On_v1_each_controller_gets_its_directory_and_oom_kills_are_read_from_oom_control()
    {
        foreach (var c in (string[])["memory", "cpu", "pids"])
        {
            Directory.CreateDirectory(Path.Combine(_root, c));
            File.WriteAllText(Path.Combine(_root, c, "cgroup.procs"), "");
        }
        File.WriteAllText(Path.Combine(_root, "memory", "memory.memsw.limit_in_bytes"), "");
        Assert.Equal(1, VmCgroup.Probe(_root).Version);
        var cg = VmCgroup.Create("vm-00000002", CgroupLimits.For(2, 512, 64), _root);
        Assert.Equal(3, cg.State.Paths.Count);
        var mem = cg.State.Paths.Single(p => p.Contains("/memory/", StringComparison.Ordinal));
        Assert.Equal((576L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(mem, "memory.limit_in_bytes")));
        Assert.Equal(File.ReadAllText(Path.Combine(mem, "memory.limit_in_bytes")), File.ReadAllText(Path.Combine(mem, "memory.memsw.limit_in_bytes")));
        var cpu = cg.State.Paths.Single(p => p.Contains("/cpu/", StringComparison.Ordinal));
        Assert.Equal("200000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_quota_us")));
        Assert.Equal("100000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_period_us")));
        Assert.Equal(0, VmCgroup.OomKills(cg.State));
        File.WriteAllText(Path.Combine(mem, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        Assert.Equal(1, VmCgroup.OomKills(cg.State));
        Assert.Equal(["vm-00000002"], VmCgroup.ListAll(_root).Keys);
    }
}
