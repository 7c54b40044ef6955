using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.State;

namespace Vmsan;

/// <summary>
/// Timeouts whose supervisor is gone. The supervisor is what enforces a timeout; if it was killed, the next command
/// that reconciles the VM (<c>list</c>, <c>get</c>, <c>doctor</c>, any verb on it) finds the expiry passed and applies
/// its action there, instead of only killing the orphaned VMM and leaving the timeout for the next start.
/// </summary>
internal sealed partial class VmLifecycle
{
    /// <summary>A live-said VM (its supervisor gone: see NeedsReconcile) whose timeout expired and never fired.</summary>
    private static bool TimeoutMissed(VmRecord rec) =>
        rec.ExpiresAt is { } at && at <= DateTimeOffset.UtcNow && rec.Status is VmStatus.Running or VmStatus.Paused;

    /// <summary>
    /// Does what the supervisor would have done at expiry: <c>stop</c> is the graceful stop (guest writes survive),
    /// <c>pause</c> persists the VM (memory kept on disk, as <c>pause --persist</c>: a paused VMM with nobody to
    /// serve it would only be killed by the next reconcile), <c>remove</c> removes it (then null). With its VMM
    /// gone too there is nothing left to stop or pause: the VM is recorded stopped and the timeout as fired. The
    /// expiry is cleared first, so it fires once even if acting fails half-way. Call with the VM lock held.
    /// </summary>
    private async Task<VmRecord?> ApplyMissedTimeoutLockedAsync(VmRecord rec, CancellationToken ct)
    {
        var action = rec.OnTimeout ?? TimeoutAction.Stop;
        var now = DateTimeOffset.UtcNow;
        var late = $"its timeout expired at {rec.ExpiresAt:O} while its supervisor (pid {rec.Supervisor?.Pid}) was dead";
        var vmmAlive = ProcessProbe.IsAlive(rec.Vmm);
        rec = rec with { ExpiresAt = null, TimedOutAt = now };
        _store.Save(rec);
        Log($"{rec.Id}: {late}; applying '{action}' now{(vmmAlive ? "" : " (its VMM is gone too)")}");

        if (action == TimeoutAction.Remove)
        {
            await RemoveLockedAsync(rec, ct).ConfigureAwait(false);
            return null;
        }
        if (!vmmAlive)
            return await FinishStoppedLockedAsync(rec, $"the VMM exited unexpectedly; {late} and is recorded as fired", ct).ConfigureAwait(false);

        var stopReason = $"timed out at {now:O} ({late})";
        if (action == TimeoutAction.Pause)
        {
            if (!File.Exists(_options.Paths.MemoryFile(rec.Id)))
                stopReason += "; stopped instead of paused: a paused VM needs its supervisor, and this one cannot be persisted (a snapshot clone, or a Firecracker VM)";
            else
            {
                try
                {
                    var persisted = await PersistLockedAsync(rec, ct).ConfigureAwait(false);
                    if (!await WaitDeadAsync(persisted.Vmm, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false))
                    {
                        ProcessProbe.Kill(persisted.Vmm, LibcPublic.SIGKILL);
                        await WaitDeadAsync(persisted.Vmm, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                    }
                    return await FinishPersistedLockedAsync(persisted, ct).ConfigureAwait(false);
                }
                catch (VmsanException ex)
                {
                    // PersistLockedAsync left the VM as it was (its vCPUs continued): stop it instead.
                    Log($"{rec.Id}: persisting at the timeout failed ({ex.Message}); stopping it");
                    stopReason += $"; stopped instead of paused: persisting it failed ({ex.Message})";
                    rec = _store.Load(rec.Id);
                }
            }
        }

        // A paused guest cannot sync and power off: let it run for the graceful part, as `vmsan stop` does.
        if (rec.Status == VmStatus.Paused)
            await TryVmmAsync(rec, c => c.ResumeAsync(ct), ct).ConfigureAwait(false);
        rec = rec with { Status = VmStatus.Stopping };
        _store.Save(rec);
        await ShutdownVmmAsync(rec, _options.StopTimeout, ct).ConfigureAwait(false);
        return await FinishStoppedLockedAsync(rec, stopReason, ct).ConfigureAwait(false);
    }
}
