using Vmsan.Core.State;

namespace Vmsan;

/// <summary>The public view of a VM, as <c>vmsan list --json</c> prints it.</summary>
public sealed record VmInfo
{
    public required string Id { get; init; }
    public required string Status { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required int DiskMib { get; init; }
    public required string Runtime { get; init; }
    public required string Accel { get; init; }
    public required string Backend { get; init; }
    public required string GuestIp { get; init; }
    public required string Netns { get; init; }
    public required string NetworkPolicy { get; init; }
    public int? Pid { get; init; }
    public int? BootMs { get; init; }
    public string? StopReason { get; init; }
    public VmError? Error { get; init; }

    public static VmInfo From(VmRecord r) => new()
    {
        Id = r.Id,
        Status = r.Status.ToString().ToLowerInvariant(),
        CreatedAt = r.CreatedAt,
        StartedAt = r.StartedAt,
        Vcpus = r.Vcpus,
        MemoryMib = r.MemoryMib,
        DiskMib = r.DiskMib,
        Runtime = r.Runtime,
        Accel = r.Accel,
        Backend = r.Backend,
        GuestIp = r.Network.GuestIp,
        Netns = r.Network.Netns,
        NetworkPolicy = r.Network.Policy,
        Pid = r.Status is VmStatus.Running or VmStatus.Paused or VmStatus.Starting or VmStatus.Stopping ? r.Vmm?.Pid : null,
        BootMs = r.BootMs,
        StopReason = r.StopReason,
        Error = r.Error,
    };
}
