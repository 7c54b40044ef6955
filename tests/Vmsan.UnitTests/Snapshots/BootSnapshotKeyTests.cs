using System.Text.Json;
using Vmsan.Core;
using Vmsan.Core.State;
using Vmsan.Snapshots;

namespace Vmsan.UnitTests.Snapshots;

public sealed class BootSnapshotKeyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-bootkey-").FullName;

    public BootSnapshotKeyTests()
    {
        foreach (var f in (string[])["vmlinux", "initrd.img", "vmsan-agent", "rootfs.ext4", "vmsan", "other.ext4"])
            File(f);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string File(string name)
    {
        var path = Path.Combine(_dir, name);
        if (!System.IO.File.Exists(path))
            System.IO.File.WriteAllText(path, "x");
        return path;
    }

    private BootKeyInputs Inputs() => new()
    {
        Backend = "qemu-microvm",
        Kernel = File("vmlinux"),
        Initrd = File("initrd.img"),
        Agent = File("vmsan-agent"),
        BaseImage = File("rootfs.ext4"),
        Vmsan = [File("vmsan")],
        VmmBuild = "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
        Accel = "tcg",
        KernelArgs = "console=ttyS0 tsc=reliable",
        TcgCpu = "max",
        Devices = "blk,net,rng",
        Vcpus = 1,
        MemoryMib = 512,
        DiskMib = 4096,
    };

    [Fact]
    public void Equal_inputs_give_one_id_shaped_like_a_boot_snapshot()
    {
        var a = BootSnapshotKey.IdFor(Inputs());
        Assert.Equal(a, BootSnapshotKey.IdFor(Inputs()));
        Assert.True(SnapshotStore.IsBootId(a), a);
        Assert.False(SnapshotStore.IsValidId(a));
    }

    public static TheoryData<string> Changes => ["memory", "vcpus", "disk", "accel", "vmm", "cmdline", "cpu", "devices", "backend", "base path", "no agent"];

    [Theory]
    [MemberData(nameof(Changes))]
    public void Any_changed_input_gives_another_id(string change)
    {
        var i = Inputs();
        var before = BootSnapshotKey.IdFor(i);
        var changed = change switch
        {
            "memory" => i with { MemoryMib = 1024 },
            "vcpus" => i with { Vcpus = 2 },
            "disk" => i with { DiskMib = 8192 },
            "accel" => i with { Accel = "kvm" },
            "vmm" => i with { VmmBuild = "8.2.0" },
            "cmdline" => i with { KernelArgs = "console=ttyS0" },
            "cpu" => i with { TcgCpu = "qemu64" },
            "devices" => i with { Devices = "blk,net" },
            "backend" => i with { Backend = "firecracker" },
            "base path" => i with { BaseImage = File("other.ext4") },
            "no agent" => i with { Agent = null },
            _ => throw new ArgumentException(change),
        };
        Assert.NotEqual(before, BootSnapshotKey.IdFor(changed));
    }

    [Theory]
    [InlineData("vmlinux")]
    [InlineData("initrd.img")]
    [InlineData("vmsan-agent")]
    [InlineData("rootfs.ext4")]
    [InlineData("vmsan")]
    public void A_rebuilt_file_gives_another_id_and_makes_the_old_snapshot_stale(string file)
    {
        var i = Inputs();
        var key = BootSnapshotKey.Describe(i);
        var manifest = Manifest(BootSnapshotKey.IdFor(key), key);
        Assert.False(VmLifecycle.IsStaleBoot(manifest, manifest.VmmVersion));

        var path = Path.Combine(_dir, file);
        System.IO.File.SetLastWriteTimeUtc(path, System.IO.File.GetLastWriteTimeUtc(path).AddSeconds(-5));

        Assert.NotEqual(manifest.Id, BootSnapshotKey.IdFor(i));
        Assert.True(VmLifecycle.IsStaleBoot(manifest, manifest.VmmVersion));
    }

    [Fact]
    public void A_file_of_another_size_gives_another_id()
    {
        var i = Inputs();
        var before = BootSnapshotKey.IdFor(i);
        var t = System.IO.File.GetLastWriteTimeUtc(i.BaseImage);
        System.IO.File.WriteAllText(i.BaseImage, "longer");
        System.IO.File.SetLastWriteTimeUtc(i.BaseImage, t);
        Assert.NotEqual(before, BootSnapshotKey.IdFor(i));
    }

    [Fact]
    public void Another_QEMU_build_or_a_missing_key_makes_a_boot_snapshot_stale()
    {
        var key = BootSnapshotKey.Describe(Inputs());
        var m = Manifest(BootSnapshotKey.IdFor(key), key);
        Assert.True(VmLifecycle.IsStaleBoot(m, "8.2.0"));
        Assert.False(VmLifecycle.IsStaleBoot(m, null)); // unreadable build: judged by the files alone
        Assert.True(VmLifecycle.IsStaleBoot(m with { BootKey = null }, m.VmmVersion));
        System.IO.File.Delete(Path.Combine(_dir, "vmlinux"));
        Assert.True(VmLifecycle.IsStaleBoot(m, m.VmmVersion));
    }

    [Fact]
    public void Boot_snapshots_are_not_user_snapshots_and_a_half_written_one_is_not_found()
    {
        var paths = new VmsanPaths(Path.Combine(_dir, "home"), "/nonexistent");
        var store = new SnapshotStore(paths);
        var key = BootSnapshotKey.Describe(Inputs());
        var boot = Manifest(BootSnapshotKey.IdFor(key), key);
        Directory.CreateDirectory(paths.SnapshotDir(boot.Id));
        SnapshotStore.WriteManifest(paths.SnapshotDir(boot.Id), boot);
        var user = Manifest("snap-0123abcd", null) with { Kind = null, Name = "mine" };
        Directory.CreateDirectory(paths.SnapshotDir(user.Id));
        SnapshotStore.WriteManifest(paths.SnapshotDir(user.Id), user);
        var half = "boot-00112233445566ff";
        Directory.CreateDirectory(paths.SnapshotDir(half)); // no snapshot.json: never completed

        Assert.Equal(["snap-0123abcd"], store.List().Select(m => m.Id));
        Assert.Equal([boot.Id], store.ListBoot().Select(m => m.Id));
        Assert.NotNull(store.FindBoot(boot.Id));
        Assert.Null(store.FindBoot(half));
        Assert.Null(store.FindBoot("snap-0123abcd"));
        Assert.Throws<Vmsan.Core.Errors.VmsanException>(() => store.Find(boot.Id));
    }

    [Fact]
    public void Only_one_holder_gets_the_build_lock()
    {
        var path = Path.Combine(_dir, ".boot-0011223344556677.lock");
        using (var first = FileLock.TryAcquire(path))
        {
            Assert.NotNull(first);
            Assert.Null(FileLock.TryAcquire(path));
        }
        using var again = FileLock.TryAcquire(path);
        Assert.NotNull(again);
    }

    [Fact]
    public void The_manifest_keeps_kind_and_key()
    {
        var m = Manifest("boot-0011223344556677", "format=1\n");
        var back = JsonSerializer.Deserialize(JsonSerializer.Serialize(m, StateJsonContext.Default.SnapshotManifest), StateJsonContext.Default.SnapshotManifest)!;
        Assert.Equal("boot", back.Kind);
        Assert.Equal("format=1\n", back.BootKey);
    }

    private static SnapshotManifest Manifest(string id, string? key) => new()
    {
        Id = id,
        Name = id,
        Kind = "boot",
        BootKey = key,
        CreatedAt = DateTimeOffset.UtcNow,
        SourceVm = "vm-00000001",
        VmmVersion = "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
        Backend = "qemu-microvm",
        Accel = "tcg",
        Vcpus = 1,
        MemoryMib = 512,
        DiskMib = 4096,
        Runtime = "base",
        Kernel = "/k",
        Initrd = "/i",
        BaseImage = "/b",
        Network = new VmNetwork { Slot = 1, Netns = "n", HostVeth = "h", HostIp = "1", NsIp = "2", GuestIp = "3", GatewayIp = "4" },
    };
}
