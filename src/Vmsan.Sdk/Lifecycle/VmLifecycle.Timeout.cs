using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.State;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    public async Task<VmInfo> SetTimeoutAsync(string id, TimeSpan? timeout, string? onTimeout = null, CancellationToken ct = default)
    {
        TimeoutAction.Validate(timeout, onTimeout ?? TimeoutAction.Stop, explicitAction: onTimeout is not null);
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            rec = timeout is { } t
                ? rec with { ExpiresAt = DateTimeOffset.UtcNow + t, OnTimeout = onTimeout ?? rec.OnTimeout ?? TimeoutAction.Stop, TimedOutAt = null }
                : rec with { ExpiresAt = null, OnTimeout = null };
            _store.Save(rec);
            if (ProcessProbe.IsAlive(rec.Supervisor))
                ProcessProbe.Kill(rec.Supervisor, LibcPublic.SIGHUP);
            Log(timeout is null ? $"{id}: timeout cleared" : $"{id}: {rec.OnTimeout} at {rec.ExpiresAt:O}");
            return VmInfo.From(rec);
        }
    }
}
