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

    internal ExecStream(WebSocket socket, IDisposable transport)
    {
        _socket = socket;
        _transport = transport;
        _reader = WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: false);
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
    /// <see cref="AgentErrorReason.Protocol"/> when the stream ends without an exit frame.</exception>
    public async Task<ExecResult> CopyOutputAsync(Stream? stdout, Stream? stderr, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ExecFrames.CopyAsync(_reader, stdout, stderr, OnStarted, CloseQuietlyAsync, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new AgentException(AgentErrorReason.Protocol, $"exec stream broke: {e.Message}", innerException: e);
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
