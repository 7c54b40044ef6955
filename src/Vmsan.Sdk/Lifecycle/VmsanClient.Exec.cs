using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan;

public sealed partial class VmsanClient
{
    /// <summary>Runs a command in the VM, streaming its output; returns its exit status.</summary>
    public async Task<ExecResult> ExecAsync(string id, ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.ExecAsync(WithImageDefaults(id, request), stdout, stderr, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts a command over a WebSocket: stdin, TTY, signals and resizes go through the returned stream. A named
    /// <see cref="ExecRequest.Session"/> that is running is attached instead.
    /// </summary>
    public async Task<ExecStream> OpenExecAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.OpenExecAsync(WithImageDefaults(id, request), ct).ConfigureAwait(false);
    }

    /// <summary>Attaches to an exec (by exec id or session name): its buffered output, then live output until it exits.</summary>
    public async Task<ExecStream> AttachExecAsync(string id, string execIdOrSession, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.AttachExecAsync(execIdOrSession, ct).ConfigureAwait(false);
    }

    /// <summary>Starts a detached exec; returns at once with its id.</summary>
    public async Task<ExecInfo> StartDetachedAsync(string id, ExecRequest request, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.StartDetachedAsync(WithImageDefaults(id, request), ct).ConfigureAwait(false);
    }

    /// <summary>Lists the VM's execs and sessions.</summary>
    public async Task<IReadOnlyList<ExecInfo>> ListExecsAsync(string id, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.ListExecsAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Sends a signal to an exec's process group.</summary>
    public async Task<ExecInfo> SignalExecAsync(string id, string execIdOrSession, int signal, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.SignalExecAsync(execIdOrSession, signal, ct).ConfigureAwait(false);
    }
}
