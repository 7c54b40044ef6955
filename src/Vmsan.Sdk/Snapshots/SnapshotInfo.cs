using Vmsan.Core.State;

namespace Vmsan;

/// <summary>A snapshot of a VM's memory, devices and disk at one instant (<see cref="VmsanClient.CreateSnapshotAsync"/>).</summary>
public sealed record SnapshotInfo
{
    /// <summary>The snapshot id.</summary>
    public required string Id { get; init; }
    /// <summary>Its name (the id unless one was given).</summary>
    public required string Name { get; init; }
    /// <summary>When it was taken.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>The VM it was taken of.</summary>
    public required string SourceVm { get; init; }
    /// <summary>The source's runtime image.</summary>
    public required string Runtime { get; init; }
    /// <summary>The VMM backend that made it (clones need the same).</summary>
    public required string Backend { get; init; }
    /// <summary>The VMM build that made it (clones need the same).</summary>
    public required string VmmVersion { get; init; }
    /// <summary><c>kvm</c> or <c>tcg</c>.</summary>
    public required string Accel { get; init; }
    /// <summary>The source's virtual CPUs (clones get the same).</summary>
    public required int Vcpus { get; init; }
    /// <summary>The source's guest RAM in MiB (clones get the same).</summary>
    public required int MemoryMib { get; init; }
    /// <summary>The source's disk size in MiB.</summary>
    public required int DiskMib { get; init; }
    /// <summary>Bytes of guest memory stored (sparse: what the guest had touched).</summary>
    public long MemoryBytes { get; init; }
    /// <summary>Bytes of device state stored.</summary>
    public long StateBytes { get; init; }
    /// <summary>How long the source was paused for the capture.</summary>
    public int PausedMs { get; init; }

    internal static SnapshotInfo From(SnapshotManifest m) => new()
    {
        Id = m.Id, Name = m.Name, CreatedAt = m.CreatedAt, SourceVm = m.SourceVm, Runtime = m.Runtime, Backend = m.Backend,
        VmmVersion = m.VmmVersion, Accel = m.Accel, Vcpus = m.Vcpus, MemoryMib = m.MemoryMib, DiskMib = m.DiskMib,
        MemoryBytes = m.MemoryBytes, StateBytes = m.StateBytes, PausedMs = m.PausedMs,
    };
}
