using Vmsan.Agent.Client;

namespace Vmsan;

public sealed partial class VmsanClient
{
    /// <summary>Runs a command in the VM, streaming its stdout and stderr (null discards) as it runs; returns how it ended.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command.</param>
    /// <param name="stdout">Receives the command's stdout bytes.</param>
    /// <param name="stderr">Receives the command's stderr bytes.</param>
    /// <param name="ct">Cancels the call (the remote process group is then killed).</param>
    /// <exception cref="Core.Errors.VmsanException">VM_NOT_FOUND, VM_NOT_RUNNING, VM_PAUSED, USER_NOT_FOUND, AGENT_UNREACHABLE, AGENT_ERROR.</exception>
    public Task<ExecResult> ExecAsync(string id, ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return WithAgentAsync(id, async agent => ExecResult.From(await agent.ExecAsync(WithImageDefaults(id, request).ToWire(), stdout, stderr, ct).ConfigureAwait(false)), ct);
    }

    /// <summary>
    /// Starts a command over a WebSocket: stdin, TTY, signals and resizes go through the returned stream. A named
    /// <see cref="ExecRequest.Session"/> that is running is attached instead.
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command.</param>
    /// <param name="ct">Cancels opening the stream.</param>
    /// <exception cref="Core.Errors.VmsanException">VM errors, AGENT_UNREACHABLE, AGENT_ERROR.</exception>
    public Task<ExecStream> OpenExecAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return WithAgentAsync(id, async agent => new ExecStream(await agent.OpenExecAsync(WithImageDefaults(id, request).ToWire(), ct).ConfigureAwait(false)), ct);
    }

    /// <summary>Attaches to an exec (by exec id or session name): its buffered output, then live output until it exits.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="execIdOrSession">An exec id (<c>e-…</c>) or a session name.</param>
    /// <param name="ct">Cancels attaching.</param>
    /// <exception cref="Core.Errors.VmsanException">VM errors, AGENT_ERROR (no such exec).</exception>
    public Task<ExecStream> AttachExecAsync(string id, string execIdOrSession, CancellationToken ct = default) =>
        WithAgentAsync(id, async agent => new ExecStream(await agent.AttachExecAsync(execIdOrSession, ct).ConfigureAwait(false)), ct);

    /// <summary>Starts a detached exec; returns at once with its id.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command (runs detached whatever <see cref="ExecRequest.Detach"/> says).</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="Core.Errors.VmsanException">VM errors, AGENT_ERROR.</exception>
    public Task<ExecInfo> StartDetachedAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return WithAgentAsync(id, async agent => ExecInfo.From(await agent.StartDetachedAsync(WithImageDefaults(id, request).ToWire(), ct).ConfigureAwait(false)), ct);
    }

    /// <summary>Lists the VM's execs and sessions.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="Core.Errors.VmsanException">VM errors, AGENT_ERROR.</exception>
    public Task<IReadOnlyList<ExecInfo>> ListExecsAsync(string id, CancellationToken ct = default) =>
        WithAgentAsync<IReadOnlyList<ExecInfo>>(id, async agent => [.. (await agent.ListExecsAsync(ct).ConfigureAwait(false)).Select(ExecInfo.From)], ct);

    /// <summary>Sends a signal to an exec's process group.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="execIdOrSession">An exec id or a session name.</param>
    /// <param name="signal">The signal number (15: SIGTERM).</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="Core.Errors.VmsanException">VM errors, AGENT_ERROR (no such exec).</exception>
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
