using Vmsan.Core.State;
using Vmsan.Vmm;
using Vmsan.Vmm.Cgroups;
using Vmsan.Vmm.Firecracker;

namespace Vmsan.UnitTests.Vmm;

/// <summary>The jailer's argument vector for each confinement switch, and the cgroup parent it is given.</summary>
public sealed class FirecrackerJailerArgsTests
{
    private static readonly VmLaunchSpec Spec = new()
    {
        VmId = "vm-00c0ffee",
        Vcpus = 1,
        MemoryMib = 256,
        Kernel = "/k",
        Initrd = "/i",
        KernelArgs = "console=ttyS0",
        Disk = "/d",
        DiskFormat = "raw",
        ConsoleLog = "/c",
        ControlSocket = "/s",
        Accel = new AccelChoice(AccelKind.Kvm, "test"),
        Netns = "vmsan-00c0ffee",
    };

    private static readonly CgroupLimits Limits = CgroupLimits.For(1, 256, 64);

    [Fact]
    public void Cgroup_v2_limits_go_to_the_vms_own_cgroup_with_swap_off_and_seccomp_stays_on()
    {
        var a = FirecrackerBoot.JailerArgs(Spec, "/usr/bin/firecracker", "/j", 1_900_000_007, 999, 2, Limits, "vmsan");
        Assert.Equal(["--cgroup-version", "2"], a.Skip(a.IndexOf("--cgroup-version")).Take(2));
        Assert.Equal("vmsan", a[a.IndexOf("--parent-cgroup") + 1]);
        Assert.Contains($"memory.max={Limits.MemoryMaxBytes}", a);
        Assert.Contains("memory.swap.max=0", a);
        Assert.Contains($"cpu.max={Limits.CpuQuotaUs} {Limits.CpuPeriodUs}", a);
        Assert.Contains($"pids.max={Limits.PidsMax}", a);
        Assert.DoesNotContain("--no-seccomp", a);
        // Firecracker's own arguments come after "--".
        Assert.True(a.IndexOf("--api-sock") > a.IndexOf("--"));
    }

    [Fact]
    public void No_cgroup_means_no_limits_and_no_cgroup_created_and_no_seccomp_is_said_to_firecracker()
    {
        var a = FirecrackerBoot.JailerArgs(Spec, "/usr/bin/firecracker", "/j", 1_900_000_007, 999, 1, null, seccomp: false);
        Assert.DoesNotContain(a, x => x.StartsWith("memory.", StringComparison.Ordinal) || x.StartsWith("cpu.", StringComparison.Ordinal));
        Assert.DoesNotContain("--cgroup", a);
        Assert.Equal("2", a[a.IndexOf("--cgroup-version") + 1]);
        Assert.Equal("--no-seccomp", a[^1]);
        Assert.True(a.IndexOf("--no-seccomp") > a.IndexOf("--"));
    }

    [Theory]
    [InlineData(1, "/sys/fs/cgroup/memory/vmsan/vm-1", "vmsan")]
    [InlineData(1, "/sys/fs/cgroup/memory/user.slice/vmsan/vm-1", "user.slice/vmsan")]
    [InlineData(2, "/sys/fs/cgroup/vmsan/vm-1", "vmsan")]
    [InlineData(2, "/sys/fs/cgroup/system.slice/vmsan/vm-1", "system.slice/vmsan")]
    public void The_jailers_parent_cgroup_is_vmsans_parent_relative_to_the_controller_root(int version, string path, string expected)
    {
        var paths = version == 1 ? new[] { path.Replace("/memory/", "/cpu/", StringComparison.Ordinal), path } : [path];
        var state = new VmCgroupState { Version = version, Paths = paths, MemoryMaxBytes = 1, CpuQuotaUs = 1, CpuPeriodUs = 1, PidsMax = 1 };
        Assert.Equal(expected, VmCgroup.RelativeParent(state));
    }
}
