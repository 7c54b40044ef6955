using Vmsan.Core;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.Snapshots;
using Vmsan.Vmm.Firecracker;

namespace Vmsan.UnitTests.Snapshots;

/// <summary>
/// A snapshot loads only into the VMM kind and version that made it: a Firecracker snapshot on a host without
/// Firecracker, or with another Firecracker version, is SNAPSHOT_INCOMPATIBLE before anything is created.
/// </summary>
public sealed class SnapshotCompatibilityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-snapcompat-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private VmsanPaths Paths => new(Path.Combine(_dir, "home"), Path.Combine(_dir, "assets"));

    private void WriteFirecrackerSnapshot(string version)
    {
        var dir = Directory.CreateDirectory(Paths.SnapshotDir("snap-1a2b3c4d")).FullName;
        SnapshotStore.WriteManifest(dir, new SnapshotManifest
        {
            Id = "snap-1a2b3c4d",
            Name = "fc",
            CreatedAt = DateTimeOffset.UtcNow,
            SourceVm = "vm-1a2b3c4d",
            VmmVersion = version,
            Backend = FirecrackerBackend.BackendName,
            Accel = "kvm",
            Vcpus = 1,
            MemoryMib = 256,
            DiskMib = 4096,
            Runtime = "base",
            Kernel = "/k",
            Initrd = "/i",
            BaseImage = "/b",
            Network = new VmNetwork { Slot = 1, Netns = "vmsan-1a2b3c4d", HostVeth = "vsn-1a2b3c4d", HostIp = "10.231.0.5", NsIp = "10.231.0.6", GuestIp = "172.30.0.2", GatewayIp = "172.30.0.1" },
            DiskLayer = "disk.raw",
        });
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    private async Task AssertIncompatibleAndNothingCreated(FirecrackerBackend firecracker, string because)
    {
        if (!Vmsan.Core.Interop.LibcPublic.IsRoot())
            Assert.Skip("vmsan's lifecycle calls need root");
        using var client = new VmsanClient(new VmsanClientOptions { Paths = Paths, Firecracker = firecracker });
        // A public call: the SDK's own exception, with the same code.
        var ex = await Assert.ThrowsAsync<Vmsan.Errors.VmsanException>(() => client.CreateFromSnapshotAsync("fc", null, TestContext.Current.CancellationToken));
        Assert.Equal(Vmsan.Errors.ErrorCode.SnapshotIncompatible, ex.Code);
        Assert.Contains(because, ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Paths.VmsDir) && Directory.EnumerateFileSystemEntries(Paths.VmsDir).Any(), "a refused clone left a VM directory");
    }

    [Fact]
    public async Task A_firecracker_snapshot_on_a_host_without_firecracker_is_incompatible_before_anything_is_created()
    {
        WriteFirecrackerSnapshot("firecracker 1.17.0");
        await AssertIncompatibleAndNothingCreated(new FirecrackerBackend(Path.Combine(_dir, "no-firecracker"), Path.Combine(_dir, "no-jailer")), "no-firecracker");
    }

    [Fact]
    public async Task A_firecracker_snapshot_of_another_firecracker_version_is_incompatible_before_anything_is_created()
    {
        WriteFirecrackerSnapshot("firecracker 1.16.0");
        var fc = Script("firecracker", "echo 'Firecracker v1.17.0'; echo");
        var jailer = Script("jailer", "exit 1");
        await AssertIncompatibleAndNothingCreated(new FirecrackerBackend(fc, jailer), "firecracker 1.16.0");
    }
}
