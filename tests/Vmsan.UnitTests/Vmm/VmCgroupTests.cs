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
        // 1 vCPU thread + QEMU's main loop: two tasks' worth of weight.
        Assert.Equal("200", File.ReadAllText(Path.Combine(dir, "cpu.weight")));
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
        Assert.Equal("3072", File.ReadAllText(Path.Combine(cpu, "cpu.shares")));
        Assert.Equal(0, VmCgroup.OomKills(cg.State));
        File.WriteAllText(Path.Combine(mem, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        Assert.Equal(1, VmCgroup.OomKills(cg.State));
        Assert.Equal(["vm-00000002"], VmCgroup.ListAll(_root).Keys);
    }

    private void FakeV1()
    {
        foreach (var c in (string[])["memory", "cpu", "pids"])
        {
            Directory.CreateDirectory(Path.Combine(_root, c));
            File.WriteAllText(Path.Combine(_root, c, "cgroup.procs"), "");
        }
    }

    [Fact]
    public void A_deferred_cpu_quota_is_open_until_applied_and_then_the_vms_size()
    {
        FakeV1();
        var cg = VmCgroup.Create("vm-00000003", CgroupLimits.For(2, 256, 64), _root, deferCpuQuota: true);
        var cpu = cg.State.Paths.Single(p => p.Contains("/cpu/", StringComparison.Ordinal));
        Assert.Equal("-1", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_quota_us")));
        Assert.Equal(200_000, cg.State.CpuQuotaUs);
        VmCgroup.ApplyCpuQuota(cg.State);
        Assert.Equal("200000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_quota_us")));

        File.Delete(Path.Combine(_root, "cgroup.controllers"));
        Directory.Delete(Path.Combine(_root, "cpu"), true);
        Directory.Delete(Path.Combine(_root, "memory"), true);
        Directory.Delete(Path.Combine(_root, "pids"), true);
        File.WriteAllText(Path.Combine(_root, "cgroup.controllers"), "cpu memory pids\n");
        var v2 = VmCgroup.Create("vm-00000004", CgroupLimits.For(1, 256, 64), _root, deferCpuQuota: true);
        Assert.Equal("max 100000", File.ReadAllText(Path.Combine(v2.State.Paths[0], "cpu.max")));
        VmCgroup.ApplyCpuQuota(v2.State);
        Assert.Equal("100000 100000", File.ReadAllText(Path.Combine(v2.State.Paths[0], "cpu.max")));
    }

    [Fact]
    public void The_directory_holding_the_vm_cgroups_weighs_what_its_vms_weigh_together_as_they_come_and_go()
    {
        FakeV1();
        var parent = Path.Combine(_root, "cpu", "vmsan");
        Directory.CreateDirectory(parent);
        File.WriteAllText(Path.Combine(parent, "cpu.shares"), "1024");
        var a = VmCgroup.Create("vm-0000000a", CgroupLimits.For(1, 256, 64), _root);
        Assert.Equal("2048", File.ReadAllText(Path.Combine(parent, "cpu.shares")));
        var b = VmCgroup.Create("vm-0000000b", CgroupLimits.For(3, 256, 64), _root);
        Assert.Equal("6144", File.ReadAllText(Path.Combine(parent, "cpu.shares")));
        // A fake cgroupfs directory holds files: empty them as the kernel would on rmdir.
        foreach (var f in a.State.Paths.SelectMany(Directory.EnumerateFiles))
            File.Delete(f);
        Assert.True(VmCgroup.Remove(a.State));
        Assert.Equal("4096", File.ReadAllText(Path.Combine(parent, "cpu.shares")));
        foreach (var f in b.State.Paths.SelectMany(Directory.EnumerateFiles))
            File.Delete(f);
        Assert.True(VmCgroup.Remove(b.State));
        // No VM left: back to one task's worth (the default).
        Assert.Equal("1024", File.ReadAllText(Path.Combine(parent, "cpu.shares")));
    }
}
