using Vmsan.Agent.Client;
using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    /// <summary>How often a streaming exec checks that its VM still exists and its VMM still runs.</summary>
    internal static readonly TimeSpan ExecWatchPeriod = TimeSpan.FromMilliseconds(250);

    public async Task<ExecResult> ExecAsync(string id, ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Over the exec WebSocket rather than POST /exec: its keepalive is what bounds a silent agent. Without stdin the
        // agent gives the command /dev/null, as POST /exec does; a cancelled copy disconnects, which kills the group.
        await using var exec = await OpenExecAsync(id, request with { Stdin = false }, ct).ConfigureAwait(false);
        return await exec.CopyOutputInternalAsync(stdout, stderr, ct).ConfigureAwait(false);
    }

    public Task<ExecStream> OpenExecAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return OpenWatchedAsync(id, agent => agent.OpenExecAsync(WithImageDefaults(id, request).ToWire(), ct), ct);
    }

    public Task<ExecStream> AttachExecAsync(string id, string execIdOrSession, CancellationToken ct = default) =>
        OpenWatchedAsync(id, agent => agent.AttachExecAsync(execIdOrSession, ct), ct);

    private async Task<ExecStream> OpenWatchedAsync(string id, Func<AgentClient, Task<Agent.Client.ExecStream>> open, CancellationToken ct)
    {
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        Agent.Client.ExecStream inner;
        try
        {
            inner = await open(agent).ConfigureAwait(false);
        }
        catch (AgentException e) when (!ct.IsCancellationRequested)
        {
            // The VM went away while we connected: say that, not "agent error".
            throw await CheckVmServingAsync(id, broken: true, ct).ConfigureAwait(false) ?? AgentErrorMap.ToVmsan(e);
        }
        inner.Watch((broken, c) => CheckVmServingAsync(id, broken, c), ExecWatchPeriod);
        return new ExecStream(inner);
    }

    /// <summary>
    /// Null while the VM exists, is running (or paused: a short pause keeps the stream, its pongs arrive late) and its
    /// VMM is alive; otherwise the error an exec on it ends with. A stream that <paramref name="broken"/> while the VM
    /// is paused ends with VM_PAUSED (the keepalive gave up during the pause). Reads the state file and /proc only (no
    /// lock) unless the VMM is gone while the state still says running: then a removal or stop is under way, and its
    /// outcome (after the VM lock frees) decides between VM_NOT_FOUND and VM_NOT_RUNNING.
    /// </summary>
    internal async Task<Exception?> CheckVmServingAsync(string id, bool broken, CancellationToken ct)
    {
        var rec = _store.TryLoad(id);
        if (rec is null)
            return RemovedMeanwhile(id);
        if (rec.Status == VmStatus.Paused && broken && ProcessProbe.IsAlive(rec.Vmm))
            return new VmsanException(ErrorCode.VmPaused, $"VM {id} was paused while the command ran; its agent stopped answering.",
                $"Resume it with `vmsan resume {id}` and run the command again.");
        if (rec.Status is VmStatus.Running or VmStatus.Paused && ProcessProbe.IsAlive(rec.Vmm))
            return null;
        if (rec.Status is VmStatus.Running or VmStatus.Paused)
        {
            // Whoever killed it (rm -f, stop, the supervisor) holds the VM lock while cleaning up: wait for it.
            await Task.Run(() =>
            {
                try
                {
                    FileLock.AcquireIfDirectoryExists(_options.Paths.VmLock(id), TimeSpan.FromSeconds(15))?.Dispose();
                }
                catch (VmsanException)
                {
                    // Still busy after 15 s: report what the state says now.
                }
            }, ct).ConfigureAwait(false);
            rec = _store.TryLoad(id);
            if (rec is null)
                return RemovedMeanwhile(id);
        }
        var what = rec.Status is VmStatus.Running or VmStatus.Paused ? "its VMM has exited" : $"it is {rec.Status.ToString().ToLowerInvariant()}";
        return new VmsanException(ErrorCode.VmNotRunning, $"VM {id} stopped while the command ran: {what}{(rec.StopReason is { } r ? $" ({r})" : "")}.",
            $"See `vmsan logs {id}`; start it again with `vmsan start {id}`.");
    }

    private static VmsanException RemovedMeanwhile(string id) =>
        new(ErrorCode.VmNotFound, $"VM {id} was removed while the command ran.", "Run `vmsan list` to see the VMs that exist.");

    public Task<ExecInfo> StartDetachedAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return WithAgentAsync(id, async agent => ExecInfo.From(await agent.StartDetachedAsync(WithImageDefaults(id, request).ToWire(), ct).ConfigureAwait(false)), ct);
    }

    public Task<IReadOnlyList<ExecInfo>> ListExecsAsync(string id, CancellationToken ct = default) =>
        WithAgentAsync<IReadOnlyList<ExecInfo>>(id, async agent => [.. (await agent.ListExecsAsync(ct).ConfigureAwait(false)).Select(ExecInfo.From)], ct);

    public Task<ExecInfo> SignalExecAsync(string id, string execIdOrSession, int signal, CancellationToken ct = default) =>
        WithAgentAsync(id, async agent => ExecInfo.From(await agent.SignalExecAsync(execIdOrSession, signal, ct).ConfigureAwait(false)), ct);

    /// <summary>Runs <paramref name="call"/> on the VM's (reused) agent client; agent failures become <see cref="Core.Errors.VmsanException"/>.</summary>
    private async Task<T> WithAgentAsync<T>(string id, Func<AgentClient, Task<T>> call, CancellationToken ct)
    {
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        try
        {
            return await call(agent).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw AgentErrorMap.ToVmsan(e);
        }
    }
}
