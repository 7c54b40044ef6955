using System.Globalization;

namespace Vmsan.Vmm.Cgroups;

/// <summary>
/// The limits of one VM's cgroup, derived from its size: memory = guest RAM + VMM overhead (swap
/// off), CPU = <c>vcpus</c> cores' worth of quota, and a pids ceiling. Pure: unit-tested.
/// </summary>
public sealed record CgroupLimits(long MemoryMaxBytes, long CpuQuotaUs, long CpuPeriodUs, int PidsMax)
{
    public const long CpuPeriod = 100_000;

    /// <summary>
    /// What QEMU needs beyond guest RAM, measured here: ~60 MiB for the process itself (libraries,
    /// device state, I/O buffers) plus, under TCG, its translation cache (<c>tb-size</c>, 64 MiB by
    /// default) and the translator's own tables. Under KVM there is no translation cache.
    /// </summary>
    public static int OverheadMib(AccelKind accel, VmmSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.MemoryOverheadMib ?? (accel == AccelKind.Kvm ? 64 : 96 + settings.TcgTbSizeMib);
    }

    /// <summary>
    /// QEMU's threads: one per vCPU, the main loop, RCU, the block layer's worker pool (up to 64)
    /// and a few helpers. The ceiling only has to stop runaway thread creation, not fit tightly.
    /// </summary>
    public static int PidsFor(int vcpus) => 128 + 2 * vcpus;

    /// <summary>
    /// How many runnable tasks' worth of CPU weight the VM's cgroup gets: its vCPU threads plus QEMU's main loop.
    /// Unconfined, each of those threads competes with every other runnable task of the host on its own; in one
    /// cgroup with the default weight they would all together weigh one task (under load, measured: a TCG boot
    /// took 1.8x as long). The weight restores the unconfined share; the quota still caps it.
    /// </summary>
    public int WeightTasks { get; init; } = 1;

    public static CgroupLimits For(int vcpus, int memoryMib, int overheadMib) =>
        new(((long)memoryMib + overheadMib) * 1024 * 1024, vcpus * CpuPeriod, CpuPeriod, PidsFor(vcpus)) { WeightTasks = vcpus + 1 };
}
