using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan;

public sealed partial class VmsanClient
{
    /// <summary>
    /// Stops the VM's vCPUs (QMP <c>stop</c>); memory, devices and disk stay in the live VMM, so
    /// <see cref="ResumeAsync"/> continues exactly where it was. Pausing a paused VM is a no-op.
    /// </summary>
    public async Task<VmInfo> PauseAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status == VmStatus.Paused)
                return VmInfo.From(rec);
            if (rec.Status != VmStatus.Running)
                throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not running.",
                    $"Only a running VM can be paused; start it with `vmsan start {id}`.");
            await using (var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
                await control.PauseAsync(ct).ConfigureAwait(false);
            rec = rec with { Status = VmStatus.Paused };
            _store.Save(rec);
            return VmInfo.From(rec);
        }
    }

    /// <summary>Continues a paused VM (QMP <c>cont</c>). Resuming a running VM is a no-op.</summary>
    public async Task<VmInfo> ResumeAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status == VmStatus.Running)
                return VmInfo.From(rec);
            if (rec.Status != VmStatus.Paused)
                throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not paused.",
                    $"Start it with `vmsan start {id}`.");
            await using (var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
                await control.ResumeAsync(ct).ConfigureAwait(false);
            rec = rec with { Status = VmStatus.Running };
            _store.Save(rec);
            return VmInfo.From(rec);
        }
    }

    private string QmpSocket(string id) => Path.Combine(_options.Paths.VmDir(id), "qmp.sock");
}
