namespace Vmsan.Core;

/// <summary>
/// Where vmsan keeps things. State (VMs, locks) lives under <see cref="Home"/> (<c>~/.vmsan</c>,
/// <c>VMSAN_HOME</c> overrides); the kernel, initramfs and runtime images built by
/// <c>install.sh</c> live under <see cref="Assets"/> (<c>/var/lib/vmsan</c>, <c>VMSAN_ASSETS</c>
/// overrides) so every state home shares one read-only copy.
/// </summary>
public sealed class VmsanPaths
{
    public VmsanPaths(string home, string assets)
    {
        Home = Path.GetFullPath(home);
        Assets = Path.GetFullPath(assets);
    }

    public string Home { get; }

    public string Assets { get; }

    public string VmsDir => Path.Combine(Home, "vms");

    public string GlobalLock => Path.Combine(Home, ".lock");

    public string VmDir(string id) => Path.Combine(VmsDir, id);

    public string VmStateFile(string id) => Path.Combine(VmDir(id), "vm.json");

    public string VmLock(string id) => Path.Combine(VmDir(id), ".lock");

    public string SnapshotsDir => Path.Combine(Home, "snapshots");

    public string SnapshotDir(string snapshotId) => Path.Combine(SnapshotsDir, snapshotId);

    /// <summary>
    /// Where running VMs' guest RAM files live (shared, so a snapshot saves only device state): tmpfs, so the
    /// kernel never writes guest memory back to a disk. <c>VMSAN_SHM</c> overrides.
    /// </summary>
    public static string MemoryDir => Vmsan.Core.VmsanEnvironment.Current.Shm is { Length: > 0 } shm ? shm : "/dev/shm";

    /// <summary>One flat name per VM, prefixed by a hash of the state home (homes share /dev/shm; no directory to leak).</summary>
    public string MemoryFile(string vmId) => Path.Combine(MemoryDir,
        "vmsan-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Home)))[..12] + "-" + vmId + ".mem");

    /// <summary>The OCI image cache: blobs by digest, names in refs/, converted ext4 roots by manifest digest.</summary>
    public string ImagesDir => Path.Combine(Home, "images");

    public string KernelDir => Path.Combine(Assets, "kernel");

    public string DefaultKernel => Path.Combine(KernelDir, "vmlinux");

    public string DefaultInitrd => Path.Combine(KernelDir, "initrd.img");

    public string RuntimeDir(string runtime) => Path.Combine(Assets, "runtimes", runtime);

    public string RuntimeRootfs(string runtime) => Path.Combine(RuntimeDir(runtime), "rootfs.ext4");

    public static VmsanPaths FromEnvironment()
    {
        var home = Vmsan.Core.VmsanEnvironment.Current.Home;
        if (string.IsNullOrWhiteSpace(home))
        {
            var user = Vmsan.Core.VmsanEnvironment.Current.UserHome;
            if (string.IsNullOrWhiteSpace(user))
                user = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            home = Path.Combine(user, ".vmsan");
        }

        var assets = Vmsan.Core.VmsanEnvironment.Current.Assets;
        if (string.IsNullOrWhiteSpace(assets))
            assets = "/var/lib/vmsan";
        return new VmsanPaths(home, assets);
    }
}
