using Vmsan.Core;
using Vmsan.Vmm;
using Vmsan.Vmm.Cgroups;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

/// <summary>The VMM's tuning is read from the environment once, at the edge, and what reaches QEMU and the cgroup is what was passed in.</summary>
public sealed class VmmSettingsTests
{
    private static VmsanEnvironment Env(params (string Name, string Value)[] vars) =>
        new(name => vars.FirstOrDefault(v => v.Name == name).Value);

    [Fact]
    public void The_environment_overrides_the_defaults_and_bad_values_keep_them()
    {
        Assert.Equal(new VmmSettings(), VmmSettings.From(Env()));
        Assert.Equal(new VmmSettings { TcgTbSizeMib = 128, TcgCpu = "qemu64", MemoryOverheadMib = 300 },
            VmmSettings.From(Env(("VMSAN_TCG_TB_SIZE", "128"), ("VMSAN_TCG_CPU", "qemu64"), ("VMSAN_VMM_MEMORY_OVERHEAD_MIB", "300"))));
        Assert.Equal(new VmmSettings(), VmmSettings.From(Env(("VMSAN_TCG_TB_SIZE", "-5"), ("VMSAN_TCG_CPU", ""), ("VMSAN_VMM_MEMORY_OVERHEAD_MIB", "lots"))));
    }

    [Fact]
    public void Qemu_and_the_cgroup_get_the_settings_passed_in()
    {
        var settings = new VmmSettings { TcgTbSizeMib = 256, TcgCpu = "qemu64" };
        var spec = new VmLaunchSpec
        {
            VmId = "vm-1a2b3c4d", Vcpus = 1, MemoryMib = 256, Kernel = "/k", Initrd = "/i", KernelArgs = "console=ttyS0",
            Disk = "/d.qcow2", Tap = "tap0", Mac = "02:00:00:00:00:01", Netns = "ns", ConsoleLog = "/c.log", ControlSocket = "/q.sock",
            Accel = new AccelChoice(AccelKind.Tcg, "test"), Settings = settings,
        };

        var args = QemuCommandLine.BuildArgs(spec);

        Assert.Contains("tcg,thread=multi,tb-size=256", args);
        Assert.Equal("qemu64", args[args.IndexOf("-cpu") + 1]);
        Assert.Equal(96 + 256, CgroupLimits.OverheadMib(AccelKind.Tcg, settings));
        Assert.Equal(500, CgroupLimits.OverheadMib(AccelKind.Kvm, settings with { MemoryOverheadMib = 500 }));
    }
}
