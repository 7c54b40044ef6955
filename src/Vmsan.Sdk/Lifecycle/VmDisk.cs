namespace Vmsan;

/// <summary>The VM's writable disk in its directory: a qcow2 overlay over the base for QEMU, a raw copy for Firecracker (raw only).</summary>
internal static class VmDisk
{
    public const string Qcow2 = "disk.qcow2";
    public const string Raw = "disk.raw";

    public static string FileFor(string? backend) => backend == Vmm.Firecracker.FirecrackerBackend.BackendName ? Raw : Qcow2;

    /// <summary>The VM's writable top layer: <see cref="Core.State.VmRecord.Disk"/> once a snapshot froze the first one, else the backend's file.</summary>
    public static string TopFor(Core.State.VmRecord rec) => rec.Disk ?? FileFor(rec.Backend);

    public static string FormatFor(string? backend) => backend == Vmm.Firecracker.FirecrackerBackend.BackendName ? "raw" : "qcow2";
}
