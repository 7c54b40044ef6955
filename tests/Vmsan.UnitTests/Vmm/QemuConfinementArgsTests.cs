using Vmsan.Vmm;
using Vmsan.Vmm.Cgroups;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

public class QemuConfinementArgsTests
{
    private static readonly VmmConfinementSpec Full = new()
    {
        Uid = 1_900_000_007,
        Gid = 994,
        Seccomp = true,
        Jail = "/v/jail",
        CgroupProcs = ["/sys/fs/cgroup/memory/vmsan/vm-1/cgroup.procs", "/sys/fs/cgroup/cpu/vmsan/vm-1/cgroup.procs"],
    };

    private static VmLaunchSpec Spec(VmmConfinementSpec c, int? tapFd = 3) => new()
    {
        VmId = "vm-1a2b3c4d",
        Vcpus = 1,
        MemoryMib = 256,
        Kernel = "/a/vmlinux",
        Initrd = "/v/initrd.img",
        KernelArgs = "console=ttyS0",
        Disk = "/v/disk.qcow2",
        ConsoleLog = "/v/console.log",
        ControlSocket = "/v/qmp.sock",
        Accel = new AccelChoice(AccelKind.Tcg, "test"),
        Tap = "tap0",
        TapFd = tapFd,
        Netns = "vmsan-1a2b3c4d",
        Confinement = c,
    };

    private static string? ValueOf(List<string> args, string flag) =>
        args.IndexOf(flag) is var i and >= 0 ? args[i + 1] : null;

    [Fact]
    public void A_confined_qemu_on_7_2_chroots_switches_uid_and_denies_spawn_obsolete_and_resource_calls()
    {
        var args = QemuCommandLine.BuildArgs(Spec(Full), QemuPrivilegeSyntax.Legacy);
        Assert.Equal("on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny", ValueOf(args, "-sandbox"));
        Assert.Equal("/v/jail", ValueOf(args, "-chroot"));
        Assert.Equal("1900000007:994", ValueOf(args, "-runas"));
        Assert.DoesNotContain("-run-with", args);
    }

    [Fact]
    public void Qemu_9_1_and_later_get_run_with_for_both_chroot_and_user()
    {
        Assert.Equal(QemuPrivilegeSyntax.RunWith, QemuCommandLine.SyntaxFor(new Version(9, 1)));
        Assert.Equal(QemuPrivilegeSyntax.RunWithChroot, QemuCommandLine.SyntaxFor(new Version(8, 2)));
        Assert.Equal(QemuPrivilegeSyntax.Legacy, QemuCommandLine.SyntaxFor(new Version(7, 2)));
        var args = QemuCommandLine.BuildArgs(Spec(Full), QemuPrivilegeSyntax.RunWith);
        Assert.Equal("chroot=/v/jail,user=1900000007:994", ValueOf(args, "-run-with"));
        Assert.DoesNotContain("-chroot", args);
        Assert.DoesNotContain("-runas", args);
        var mid = QemuCommandLine.BuildArgs(Spec(Full), QemuPrivilegeSyntax.RunWithChroot);
        Assert.Equal("chroot=/v/jail", ValueOf(mid, "-run-with"));
        Assert.Equal("1900000007:994", ValueOf(mid, "-runas"));
    }

    [Theory]
    [InlineData("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", 7, 2)]
    [InlineData("QEMU emulator version 9.2.0\nCopyright (c) 2003-2024", 9, 2)]
    public void The_qemu_version_is_read_from_its_banner(string text, int major, int minor) =>
        Assert.Equal(new Version(major, minor), QemuCommandLine.ParseVersion(text));

    [Theory]
    [InlineData("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022", "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")]
    [InlineData("QEMU emulator version 9.2.0\nCopyright (c) 2003-2024", "9.2.0")]
    [InlineData("not qemu", null)]
    public void The_qemu_build_reads_as_query_version_reports_it(string text, string? build) =>
        Assert.Equal(build, QemuCommandLine.ParseBuild(text));

    [Fact]
    public void Each_switch_turns_off_exactly_its_own_confinement()
    {
        var noSeccomp = QemuCommandLine.BuildArgs(Spec(Full with { Seccomp = false }));
        Assert.DoesNotContain("-sandbox", noSeccomp);
        Assert.Contains("-chroot", noSeccomp);
        Assert.Contains("-runas", noSeccomp);

        var noChroot = QemuCommandLine.BuildArgs(Spec(Full with { Jail = null }));
        Assert.DoesNotContain("-chroot", noChroot);
        Assert.Contains("-sandbox", noChroot);
        Assert.Contains("-runas", noChroot);

        // As root QEMU never switches uid, so set*id can be denied too.
        var asRoot = QemuCommandLine.BuildArgs(Spec(Full with { Uid = null, Gid = null }));
        Assert.DoesNotContain("-runas", asRoot);
        Assert.Equal("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", ValueOf(asRoot, "-sandbox"));
        var asRootArgv = QemuCommandLine.BuildArgv(Spec(Full with { Uid = null, Gid = null }), "/usr/bin/qemu-system-x86_64", QemuPrivilegeSyntax.Legacy, 40);
        Assert.DoesNotContain("capsh", asRootArgv);

        var noCgroup = QemuCommandLine.BuildArgv(Spec(Full with { CgroupProcs = [] }), "/usr/bin/qemu-system-x86_64", QemuPrivilegeSyntax.Legacy, 40);
        Assert.Equal("ip", noCgroup[0]);
    }

    [Fact]
    public void The_launcher_enters_the_cgroup_then_the_namespace_then_drops_every_bounding_capability_before_qemu()
    {
        var argv = QemuCommandLine.BuildArgv(Spec(Full), "/usr/bin/qemu-system-x86_64", QemuPrivilegeSyntax.Legacy, 40);
        Assert.Equal("/bin/sh", argv[0]);
        var sep = argv.IndexOf("--");
        Assert.Equal(Full.CgroupProcs, argv[4..sep]);
        Assert.Equal(["ip", "netns", "exec", "vmsan-1a2b3c4d"], argv[(sep + 1)..(sep + 5)]);
        var capsh = argv.IndexOf("capsh");
        Assert.Equal(sep + 5, capsh);
        Assert.Equal($"--inh={QemuCommandLine.StartupCapabilities}", argv[capsh + 1]);
        Assert.Equal("--drop=" + string.Join(',', Enumerable.Range(0, 41)), argv[capsh + 2]);
        Assert.Equal("--shell=/usr/bin/qemu-system-x86_64", argv[capsh + 3]);
        Assert.Equal("--", argv[capsh + 4]);
        Assert.Equal("-name", argv[capsh + 5]);
    }

    [Fact]
    public void The_tap_is_passed_as_an_inherited_descriptor_not_opened_by_name()
    {
        var args = QemuCommandLine.BuildArgs(Spec(Full, tapFd: 7));
        Assert.Equal("tap,id=net0,fd=7", ValueOf(args, "-netdev"));
        Assert.Equal("tap,id=net0,ifname=tap0,script=no,downscript=no", ValueOf(QemuCommandLine.BuildArgs(Spec(Full, tapFd: null)), "-netdev"));
    }

    [Fact]
    public void Cgroup_limits_follow_the_vm_size()
    {
        var l = CgroupLimits.For(vcpus: 2, memoryMib: 512, overheadMib: 160);
        Assert.Equal(672L * 1024 * 1024, l.MemoryMaxBytes);
        Assert.Equal(200_000, l.CpuQuotaUs);
        Assert.Equal(100_000, l.CpuPeriodUs);
        Assert.Equal(132, l.PidsMax);
        Assert.Equal(160, CgroupLimits.OverheadMib(AccelKind.Tcg, new VmmSettings()));
        Assert.Equal(64, CgroupLimits.OverheadMib(AccelKind.Kvm, new VmmSettings()));
    }
}
