namespace Vmsan.Diagnostics;

/// <summary>One VM disk: its size as the guest sees it and what its overlay holds on the host now.</summary>
internal readonly record struct VmDiskUsage(string Id, long VirtualBytes, long AllocatedBytes)
{
    /// <summary>How much more host space the disk could take if the guest filled it (never negative).</summary>
    public long CanGrowBytes => Math.Max(0, VirtualBytes - AllocatedBytes);
}

/// <summary>
/// Disk overlays are thin (qcow2): a VM's <c>--disk</c> is a ceiling, not an allocation. That is fine until the
/// ceilings add up to more than the host has: then a guest writing its disk full fails mid-write (QEMU pauses or
/// the guest sees I/O errors). vmsan warns rather than refuses, and <c>doctor</c> says how far it is overcommitted.
/// </summary>
internal static class DiskSpace
{
    private const double GiB = 1024.0 * 1024 * 1024;

    /// <summary>The warning for a new disk of <paramref name="diskMib"/> MiB with <paramref name="freeBytes"/> free, or null when it fits.</summary>
    public static string? CreateWarning(long diskMib, long freeBytes, string where)
    {
        var bytes = diskMib * 1024 * 1024;
        return bytes <= freeBytes
            ? null
            : $"--disk {diskMib} MiB is more than the {freeBytes / GiB:0.0} GiB free on {where}: the disk is thin (it takes space only as the guest writes), "
              + "but a guest that fills it will get I/O errors once the host runs out. `vmsan doctor` shows how far the VMs are overcommitted.";
    }

    /// <summary>The doctor line: what every VM's disk could still grow by against what is free.</summary>
    public static DoctorCheck Check(IReadOnlyCollection<VmDiskUsage> disks, long freeBytes, string where)
    {
        ArgumentNullException.ThrowIfNull(disks);
        var grow = disks.Sum(d => d.CanGrowBytes);
        var detail = $"{disks.Count} VM disk{(disks.Count == 1 ? "" : "s")} could grow by {grow / GiB:0.0} GiB; {freeBytes / GiB:0.0} GiB free on {where}"
                     + (grow > freeBytes ? $" (overcommitted by {(grow - freeBytes) / GiB:0.0} GiB: thin disks, fine until guests fill them)" : "");
        // Informational: thin provisioning is allowed, so overcommitment is not a failed check.
        return new DoctorCheck("disk space", true, detail,
            grow > freeBytes ? "Free space on that filesystem, remove VMs you no longer need, or create smaller --disk sizes." : null);
    }
}
