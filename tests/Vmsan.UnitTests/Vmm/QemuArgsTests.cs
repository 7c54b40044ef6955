using Vmsan.Vmm;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

public class QemuArgsTests
{
    private static VmLaunchSpec Spec(AccelKind kind = AccelKind.Tcg, string? tap = null) => new()
    {
        VmId = "vm-1a2b3c4d",
        Vcpus = 2,
        MemoryMib = 768,
        Kernel = "/a/vmlinux",
        Initrd = "/v/initrd.img",
        KernelArgs = "console=ttyS0 quiet",
        Disk = "/v/disk.qcow2",
        ConsoleLog = "/v/console.log",
        ControlSocket = "/v/qmp.sock",
        Accel = new AccelChoice(kind, "test", 2_000_000),
        Tap = tap,
    };

    /// <summary>The value following <paramref name="flag"/>, for each occurrence of it.</summary>
    private static List<string> ValuesOf(List<string> args, string flag) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == flag).Select(x => args[x.i + 1]).ToList();

    [Fact]
    public void Tcg_uses_multithreaded_tcg_with_a_max_cpu()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(AccelKind.Tcg));

        var accel = Assert.Single(ValuesOf(args, "-accel"));
        Assert.StartsWith("tcg,thread=multi,tb-size=", accel, StringComparison.Ordinal);
        Assert.Equal(["max"], ValuesOf(args, "-cpu"));
    }

    [Fact]
    public void Kvm_uses_kvm_with_the_host_cpu()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(AccelKind.Kvm));

        Assert.Equal(["kvm"], ValuesOf(args, "-accel"));
        Assert.Equal(["host"], ValuesOf(args, "-cpu"));
    }

    [Fact]
    public void Every_new_vm_gets_a_virtio_rng_device_after_its_nic_fed_by_the_vmms_getrandom()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(tap: "tap0"));

        Assert.Contains("rng-builtin,id=rng0", ValuesOf(args, "-object"));
        var devices = ValuesOf(args, "-device");
        Assert.Equal(["virtio-blk-device,drive=root", "virtio-net-device,netdev=net0,mac=06:00:ac:1e:00:02", "virtio-rng-device,rng=rng0"], devices);
        // Nothing opened by path: a chrooted VMM has no /dev/urandom.
        Assert.DoesNotContain(args, a => a.Contains("rng-random", StringComparison.Ordinal));
    }

    [Fact]
    public void A_vm_saved_with_the_legacy_device_set_is_restored_without_the_rng_device()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(tap: "tap0") with { Devices = VmDevices.Legacy, Incoming = true });

        Assert.DoesNotContain(args, a => a.Contains("rng", StringComparison.Ordinal));
        Assert.Equal(2, ValuesOf(args, "-device").Count);
    }

    [Theory]
    [InlineData(null, "blk,net", false, true)]
    [InlineData("blk,net", "blk,net", false, true)]
    [InlineData("blk,net,rng", "blk,net,rng", true, true)]
    [InlineData("blk,net,rng,balloon", "blk,net,rng,balloon", true, false)]
    public void Device_sets_are_read_from_records(string? recorded, string set, bool rng, bool known)
    {
        Assert.Equal(set, VmDevices.Of(recorded));
        Assert.Equal(rng, VmDevices.HasRng(VmDevices.Of(recorded)));
        Assert.Equal(known, VmDevices.IsKnown(VmDevices.Of(recorded)));
    }

    [Theory]
    [InlineData(AccelKind.Tcg)]
    [InlineData(AccelKind.Kvm)]
    public void Every_launch_is_a_microvm_that_exits_instead_of_rebooting(AccelKind kind)
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(kind));

        Assert.Contains("-no-reboot", args);
        Assert.Contains("-nodefaults", args);
        Assert.Equal(["microvm,x-option-roms=off,rtc=on"], ValuesOf(args, "-M"));
        Assert.Equal(["768"], ValuesOf(args, "-m"));
        Assert.Equal(["2"], ValuesOf(args, "-smp"));
        Assert.Equal(["/a/vmlinux"], ValuesOf(args, "-kernel"));
        Assert.Equal(["/v/initrd.img"], ValuesOf(args, "-initrd"));
        Assert.Equal(["console=ttyS0 quiet"], ValuesOf(args, "-append"));
        Assert.Equal(["vm-1a2b3c4d"], ValuesOf(args, "-name"));
    }

    [Fact]
    public void Qmp_listens_on_the_control_socket_without_waiting_for_a_client()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec());

        Assert.Equal(["unix:/v/qmp.sock,server=on,wait=off"], ValuesOf(args, "-qmp"));
    }

    [Fact]
    public void Without_a_tap_there_is_no_network_device()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(tap: null));

        Assert.DoesNotContain("-netdev", args);
        Assert.DoesNotContain(args, a => a.StartsWith("virtio-net", StringComparison.Ordinal));
    }

    [Fact]
    public void With_a_tap_the_nic_attaches_to_it()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec(tap: "tap0"));

        Assert.Equal(["tap,id=net0,ifname=tap0,script=no,downscript=no"], ValuesOf(args, "-netdev"));
        Assert.Contains("virtio-net-device,netdev=net0,mac=06:00:ac:1e:00:02", ValuesOf(args, "-device"));
    }

    [Fact]
    public void A_comma_in_a_path_is_doubled_in_option_values()
    {
        var spec = Spec() with { Disk = "/v,x/disk.qcow2", ConsoleLog = "/v,x/console.log", ControlSocket = "/v,x/qmp.sock" };

        var args = QemuMicrovmBackend.BuildArgs(spec);

        Assert.StartsWith("id=root,file=/v,,x/disk.qcow2,format=qcow2,", Assert.Single(ValuesOf(args, "-drive")), StringComparison.Ordinal);
        Assert.Equal(["file,id=con0,path=/v,,x/console.log"], ValuesOf(args, "-chardev"));
        Assert.Equal(["unix:/v,,x/qmp.sock,server=on,wait=off"], ValuesOf(args, "-qmp"));
    }

    [Fact]
    public void The_disk_is_attached_as_virtio_blk_with_discard()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec() with { DiskFormat = "raw" });

        Assert.Equal(["id=root,file=/v/disk.qcow2,format=raw,if=none,discard=unmap,detect-zeroes=unmap"], ValuesOf(args, "-drive"));
        Assert.Contains("virtio-blk-device,drive=root", ValuesOf(args, "-device"));
    }

    [Fact]
    public void A_snapshottable_vm_has_shared_file_backed_ram_and_no_incoming()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec() with { MemoryFile = "/dev/shm/x/vm-1a2b3c4d.mem" });

        Assert.Equal(["microvm,x-option-roms=off,rtc=on,memory-backend=mem"], ValuesOf(args, "-M"));
        Assert.Equal(["memory-backend-file,id=mem,size=768M,mem-path=/dev/shm/x/vm-1a2b3c4d.mem,share=on", "rng-builtin,id=rng0"], ValuesOf(args, "-object"));
        Assert.DoesNotContain("-incoming", args);
        Assert.DoesNotContain("-S", args);
    }

    [Fact]
    public void A_clone_maps_the_snapshot_ram_privately_and_waits_for_its_device_state()
    {
        var args = QemuMicrovmBackend.BuildArgs(Spec() with { MemoryFile = "/s/snap,1/memory", MemoryShared = false, Incoming = true });

        Assert.Equal(["memory-backend-file,id=mem,size=768M,mem-path=/s/snap,,1/memory,share=off", "rng-builtin,id=rng0"], ValuesOf(args, "-object"));
        Assert.Equal(["defer"], ValuesOf(args, "-incoming"));
        Assert.Contains("-S", args);
    }
}
