using Vmsan.Core.State;

namespace Vmsan.Supervision;

/// <summary>
/// The state transitions a VM's supervisor asks for and does not own: claiming its network, recording its VM's end
/// (stopped, or persisted and still paused), and a timeout's stop or pause. The lifecycle service implements them;
/// the supervisor gets this interface, not the client.
/// </summary>
internal interface IVmTransitions
{
    /// <summary>Marks the VM's network namespace as this VMSAN_HOME's (so doctor elsewhere leaves it alone).</summary>
    void ClaimNetwork(string id);

    /// <summary>The VMM ended: network down, transient files gone, the record stopped (or failed) with <paramref name="reason"/>. Call with the VM lock held.</summary>
    Task<VmRecord> FinishStoppedLockedAsync(VmRecord rec, string reason, CancellationToken ct);

    /// <summary>The VMM of a VM being persisted ended: network down, RAM freed, the VM stays paused. Call with the VM lock held.</summary>
    Task<VmRecord> FinishPersistedLockedAsync(VmRecord rec, CancellationToken ct);

    /// <summary>A timeout's stop: the same graceful stop as <c>vmsan stop</c>.</summary>
    Task<VmInfo> StopAsync(string id, CancellationToken ct = default);

    /// <summary>A timeout's pause: the same as <c>vmsan pause</c>.</summary>
    Task<VmInfo> PauseAsync(string id, bool persist = false, CancellationToken ct = default);
}
