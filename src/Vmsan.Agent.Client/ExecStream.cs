using System.Net.WebSockets;
using System.Text.Json;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Client;

/// <summary>
/// A live exec over a WebSocket (<see cref="AgentClient.OpenExecAsync"/>, <see cref="AgentClient.AttachExecAsync"/>):
/// read its output with <see cref="CopyOutputAsync"/>, and meanwhile send stdin, EOF, signals and terminal sizes.
/// The send methods are safe to call from several threads. Disposing disconnects: a plain exec is then killed, a
/// detached exec or named session keeps running.
/// </summary>
internal sealed class ExecStream : IAsyncDisposable, IDisposable
{
    private readonly WebSocket _socket;
    private readonly IDisposable _transport;
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly Stream _reader;
    private readonly CancellationTokenSource _lifetime = new();
    private Func<bool, CancellationToken, Task<Exception?>>? _check;
    private Exception? _failure;
    private int _disposed;

    internal ExecStream(WebSocket socket, IDisposable transport)
    {
        _socket = socket;
        _transport = transport;
        _reader = WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: false);
    }

    /// <summary>
    /// Watches something the stream cannot see (e.g. the VM's state): every <paramref name="period"/>, and once more
    /// when the stream breaks, <paramref name="check"/> runs (its first argument says whether the stream broke); the
    /// first exception it returns aborts the stream and is what <see cref="CopyOutputAsync"/> throws. A VM removed or killed under an exec may leave its TCP connection
    /// silent rather than reset (its namespace is gone), so without this the copy could wait for the keepalive.
    /// </summary>
    public void Watch(Func<bool, CancellationToken, Task<Exception?>> check, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(check);
        _check = check;
        var token = _lifetime.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                while (!token.IsCancellationRequested)
                {
                    await Task.Delay(period, token).ConfigureAwait(false);
                    if (await check(false, token).ConfigureAwait(false) is { } failure)
                    {
                        Fail(failure);
                        return;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);
    }

    private void Fail(Exception failure)
    {
        if (Interlocked.CompareExchange(ref _failure, failure, null) is null)
        {
            _socket.Abort();
        }
    }

    /// <summary>Why the stream broke: the watched check's answer if it has one, else <paramref name="fallback"/>.</summary>
    private async Task<Exception> ExplainAsync(Exception fallback)
    {
        if (Volatile.Read(ref _failure) is { } known)
        {
            return known;
        }

        if (_check is { } check)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                if (await check(true, cts.Token).ConfigureAwait(false) is { } failure)
                {
                    return failure;
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        return fallback;
    }

    /// <summary>The exec id, once the started frame arrived.</summary>
    public string? Id { get; private set; }

    /// <summary>The guest pid, once the started frame arrived.</summary>
    public int? Pid { get; private set; }

    /// <summary>Whether the exec runs on a PTY (from the started frame).</summary>
    public bool Tty { get; private set; }

    /// <summary>Raised when the started frame arrives (the exec id is known).</summary>
    public event Action<ExecStream>? Started;

    /// <summary>
    /// Copies stdout and stderr frames to the streams (null discards) until the exit frame, and returns the status.
    /// </summary>
    /// <exception cref="AgentException"><see cref="AgentErrorReason.Rejected"/> for an error frame (e.g. <c>USER_NOT_FOUND</c>),
    /// <see cref="AgentErrorReason.Unreachable"/> when the connection broke or the agent stopped answering pings
    /// (<see cref="AgentClient.StreamKeepAliveTimeout"/>), <see cref="AgentErrorReason.Protocol"/> when the stream ends
    /// without an exit frame. Whatever a <see cref="Watch"/> check reported comes first.</exception>
    public async Task<ExecResult> CopyOutputAsync(Stream? stdout, Stream? stderr, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ExecFrames.CopyAsync(_reader, stdout, stderr, OnStarted, CloseQuietlyAsync, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException
                                   && !cancellationToken.IsCancellationRequested)
        {
            // The keepalive aborts a socket whose pings go unanswered: that, or a reset, is an agent we cannot reach.
            throw await ExplainAsync(new AgentException(AgentErrorReason.Unreachable, $"the agent stopped answering the exec stream: {e.Message}", innerException: e))
                .ConfigureAwait(false);
        }
        catch (AgentException e) when (e.Reason == AgentErrorReason.Protocol && !cancellationToken.IsCancellationRequested)
        {
            throw await ExplainAsync(e).ConfigureAwait(false);
        }
    }

    private void OnStarted(ExecStarted started)
    {
        (Pid, Id, Tty) = (started.Pid, started.Id, started.Tty);
        Started?.Invoke(this);
    }

    /// <summary>Sends bytes to the process's stdin (or the terminal's input).</summary>
    public Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        SendAsync(FrameType.Stdin, data, cancellationToken);

    /// <summary>Closes the process's stdin (on a TTY: sends Ctrl-D).</summary>
    public Task CloseStdinAsync(CancellationToken cancellationToken = default) =>
        SendAsync(FrameType.StdinEof, ReadOnlyMemory<byte>.Empty, cancellationToken);

    /// <summary>Sends a signal (e.g. 2, SIGINT) to the exec's process group.</summary>
    public Task SignalAsync(int signal, CancellationToken cancellationToken = default) =>
        SendAsync(FrameType.Signal, JsonSerializer.SerializeToUtf8Bytes(new ExecSignal(signal), AgentJsonContext.Default.ExecSignal), cancellationToken);

    /// <summary>Resizes the exec's terminal.</summary>
    public Task ResizeAsync(int cols, int rows, CancellationToken cancellationToken = default) =>
        SendAsync(FrameType.Resize, JsonSerializer.SerializeToUtf8Bytes(new ExecResize(cols, rows), AgentJsonContext.Default.ExecResize), cancellationToken);

    private async Task SendAsync(FrameType type, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var frame = FrameCodec.Encode(type, payload.Span);
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException && !cancellationToken.IsCancellationRequested)
        {
            // The exec ended or the connection broke: CopyOutputAsync reports how.
        }
        finally
        {
            _sendGate.Release();
        }
    }

    private async Task CloseQuietlyAsync()
    {
        await _sendGate.WaitAsync().ConfigureAwait(false);
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _lifetime.Cancel();
        _lifetime.Dispose();
        _socket.Abort();
        _socket.Dispose();
        _transport.Dispose();
        _sendGate.Dispose();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
