using Vmsan.Errors;
using AgentStream = Vmsan.Agent.Client.ExecStream;

namespace Vmsan;

/// <summary>
/// A live exec (<see cref="VmsanClient.OpenExecAsync"/>, <see cref="VmsanClient.AttachExecAsync"/>): read its output
/// with <see cref="CopyOutputAsync"/>, and meanwhile send stdin, EOF, signals and terminal sizes (the send methods
/// are safe to call from several threads). Disposing disconnects: a plain exec is then killed, a detached exec or
/// named session keeps running.
/// </summary>
public sealed class ExecStream : IAsyncDisposable, IDisposable
{
    private readonly AgentStream _inner;

    internal ExecStream(AgentStream inner)
    {
        _inner = inner;
        _inner.Started += _ => Started?.Invoke(this);
    }

    /// <summary>The exec id, once the exec has started.</summary>
    public string? Id => _inner.Id;

    /// <summary>The guest pid, once the exec has started.</summary>
    public int? Pid => _inner.Pid;

    /// <summary>Whether the exec runs on a PTY.</summary>
    public bool Tty => _inner.Tty;

    /// <summary>Raised when the exec has started (its id is known).</summary>
    public event Action<ExecStream>? Started;

    /// <summary>Copies stdout and stderr to the streams (null discards) until the exec exits; returns how it ended.</summary>
    /// <exception cref="VmsanException">USER_NOT_FOUND, EXEC_FAILED, AGENT_ERROR (the stream broke), ...</exception>
    public Task<ExecResult> CopyOutputAsync(Stream? stdout, Stream? stderr, CancellationToken cancellationToken = default) =>
        Sdk(() => CopyOutputInternalAsync(stdout, stderr, cancellationToken));

    /// <summary>As <see cref="CopyOutputAsync"/>, failing with the implementation's exception (for the lifecycle's own calls).</summary>
    internal async Task<ExecResult> CopyOutputInternalAsync(Stream? stdout, Stream? stderr, CancellationToken cancellationToken)
    {
        try
        {
            return ExecResult.From(await _inner.CopyOutputAsync(stdout, stderr, cancellationToken).ConfigureAwait(false));
        }
        catch (Agent.Client.AgentException e)
        {
            throw AgentErrorMap.ToVmsan(e);
        }
    }

    /// <summary>Sends bytes to the process's stdin (or the terminal's input).</summary>
    /// <exception cref="VmsanException">AGENT_ERROR (the stream broke), ...</exception>
    public Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Sdk(async () => { await _inner.WriteStdinAsync(data, cancellationToken).ConfigureAwait(false); return true; });

    /// <summary>Closes the process's stdin (on a TTY: sends Ctrl-D).</summary>
    /// <exception cref="VmsanException">AGENT_ERROR (the stream broke), ...</exception>
    public Task CloseStdinAsync(CancellationToken cancellationToken = default) =>
        Sdk(async () => { await _inner.CloseStdinAsync(cancellationToken).ConfigureAwait(false); return true; });

    /// <summary>Sends a signal (e.g. 2, SIGINT) to the exec's process group.</summary>
    /// <exception cref="VmsanException">AGENT_ERROR (the stream broke), ...</exception>
    public Task SignalAsync(int signal, CancellationToken cancellationToken = default) =>
        Sdk(async () => { await _inner.SignalAsync(signal, cancellationToken).ConfigureAwait(false); return true; });

    /// <summary>Resizes the exec's terminal.</summary>
    /// <exception cref="VmsanException">AGENT_ERROR (the stream broke), ...</exception>
    public Task ResizeAsync(int cols, int rows, CancellationToken cancellationToken = default) =>
        Sdk(async () => { await _inner.ResizeAsync(cols, rows, cancellationToken).ConfigureAwait(false); return true; });

    /// <summary>The agent client's failures become the SDK's own exception, as every other call's do.</summary>
    private static async Task<T> Sdk<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Agent.Client.AgentException e)
        {
            throw PublicErrors.ToPublic(AgentErrorMap.ToVmsan(e));
        }
        catch (Core.Errors.VmsanException e)
        {
            throw PublicErrors.ToPublic(e);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
