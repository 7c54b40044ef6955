using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vmsan.Agent.Http;

/// <summary>
/// One client connection: parses HTTP/1.1 requests from a socket (keep-alive, Content-Length and chunked
/// bodies), writes responses, and can hand its raw stream over for protocol upgrades.
/// Reads are buffered in one array that never grows beyond the head limit.
/// </summary>
internal sealed partial class HttpConnection : IAsyncDisposable
{
    private static readonly byte[] Continue100 = "HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray();

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly HttpLimits _limits;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private bool _detached;
    private int _requestsServed;

    public HttpConnection(Socket socket, HttpLimits limits)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _limits = limits;
        _buffer = new byte[Math.Max(limits.MaxHeadBytes, 8192) + 4096];
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "?";
    }

    public string RemoteEndPoint { get; }

    /// <summary>Environment.TickCount64 at accept.</summary>
    public long AcceptedAt { get; } = Environment.TickCount64;

    /// <summary>True once a complete request head has arrived (the connection is doing work, not waiting for a client).</summary>
    public bool HasRequest => Volatile.Read(ref _requestsServed) > 0;

    /// <summary>The connection's stream for writing responses; sync writes are allowed from any one thread at a time.</summary>
    internal NetworkStream Stream => _stream;

    /// <summary>Serves requests until the client closes, asks to close, or sends something unparseable.</summary>
    public async Task RunAsync(Router router, CancellationToken serverToken)
    {
        try
        {
            while (!serverToken.IsCancellationRequested)
            {
                HttpRequest? request;
                try
                {
                    request = await ReadRequestHeadAsync(serverToken).ConfigureAwait(false);
                }
                catch (HttpBadRequestException e)
                {
                    AgentLog.Debug($"{RemoteEndPoint}: bad request: {e.Message}");
                    await RejectAndCloseAsync(e.Status, e.Message).ConfigureAwait(false);
                    return;
                }

                if (request is null)
                {
                    return;
                }

                var context = new RequestContext(this, request, serverToken);
                var keepAlive = await DispatchAsync(router, context).ConfigureAwait(false);
                if (_detached || !keepAlive)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            AgentLog.Debug($"{RemoteEndPoint}: connection ended: {e.Message}");
        }
        finally
        {
            if (!_detached)
            {
                await DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> DispatchAsync(Router router, RequestContext context)
    {
        var request = context.Request;
        try
        {
            await router.DispatchAsync(context).ConfigureAwait(false);
        }
        catch (HttpBadRequestException e)
        {
            if (context.ResponseStarted)
            {
                return false;
            }

            await context.WriteErrorAsync(e.Status, e.Status == 413 ? Protocol.AgentErrorCodes.PayloadTooLarge : Protocol.AgentErrorCodes.BadRequest, e.Message, close: e.CloseConnection).ConfigureAwait(false);
            if (e.CloseConnection)
            {
                await LingerCloseAsync().ConfigureAwait(false);
                return false;
            }
        }
        catch (Exception e) when (e is not (IOException or SocketException or OperationCanceledException))
        {
            AgentLog.Error($"{request.Method} {request.Path}: {e}");
            if (!context.ResponseStarted)
            {
                await context.WriteErrorAsync(500, Protocol.AgentErrorCodes.Internal, "internal error", close: true).ConfigureAwait(false);
            }

            return false;
        }

        if (_detached)
        {
            return false;
        }

        if (!context.ResponseCompleted)
        {
            // A handler that neither finished nor handed the connection over leaves it unusable.
            return false;
        }

        if (!context.KeepAlive)
        {
            return false;
        }

        if (request.HasBody && !request.BodyConsumed)
        {
            // Skip a small unread body to keep the connection; close rather than read a large one.
            if (request.Chunked || request.ContentLength > 64 * 1024)
            {
                return false;
            }

            await SkipBodyAsync(request).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>Writes an error response then closes the connection gracefully.</summary>
    private async Task RejectAndCloseAsync(int status, string message)
    {
        var body = Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(
            new Protocol.AgentError(status == 413 ? Protocol.AgentErrorCodes.PayloadTooLarge : Protocol.AgentErrorCodes.BadRequest, message),
            Protocol.AgentJsonContext.Default.AgentError));
        await WriteSimpleResponseAsync(status, Protocol.AgentProtocol.JsonContentType, body, keepAlive: false, extraHeaders: null, CancellationToken.None).ConfigureAwait(false);
        await LingerCloseAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Half-closes then drains what the client still sends for a moment: closing a socket with unread
    /// data makes the kernel send RST, which can destroy the response before the client reads it.
    /// </summary>
    private async Task LingerCloseAsync()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
            try
            {
                var drained = 0;
                while (drained < 1024 * 1024)
                {
                    var n = await _socket.ReceiveAsync(scratch, SocketFlags.None, cts.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    drained += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    internal async ValueTask WriteSimpleResponseAsync(int status, string? contentType, ReadOnlyMemory<byte> body, bool keepAlive,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders, CancellationToken cancellationToken)
    {
        var head = new StringBuilder(128);
        head.Append("HTTP/1.1 ").Append(status).Append(' ').Append(HttpStatus.Reason(status)).Append("\r\n");
        if (contentType is not null)
        {
            head.Append("Content-Type: ").Append(contentType).Append("\r\n");
        }

        head.Append("Content-Length: ").Append(body.Length).Append("\r\n");
        AppendHeaders(head, extraHeaders);
        head.Append(keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
        var headBytes = Encoding.ASCII.GetByteCount(head.ToString());
        var buffer = ArrayPool<byte>.Shared.Rent(headBytes + body.Length);
        try
        {
            Encoding.ASCII.GetBytes(head.ToString(), buffer);
            body.Span.CopyTo(buffer.AsSpan(headBytes));
            await _stream.WriteAsync(buffer.AsMemory(0, headBytes + body.Length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal async ValueTask WriteStreamingHeadAsync(int status, string contentType, bool chunked, bool keepAlive, CancellationToken cancellationToken)
    {
        var head = new StringBuilder(128);
        head.Append("HTTP/1.1 ").Append(status).Append(' ').Append(HttpStatus.Reason(status)).Append("\r\n");
        head.Append("Content-Type: ").Append(contentType).Append("\r\n");
        head.Append("Cache-Control: no-store\r\n");
        if (chunked)
        {
            head.Append("Transfer-Encoding: chunked\r\n");
        }

        head.Append(keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), cancellationToken).ConfigureAwait(false);
    }

    private static void AppendHeaders(StringBuilder head, IEnumerable<KeyValuePair<string, string>>? headers)
    {
        if (headers is null)
        {
            return;
        }

        foreach (var (name, value) in headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }
    }

    internal ValueTask SendContinueIfExpectedAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.ExpectContinue)
        {
            return ValueTask.CompletedTask;
        }

        return _stream.WriteAsync(Continue100, cancellationToken);
    }

    /// <summary>
    /// Hands the raw connection over (for HTTP Upgrade): the returned stream first yields any bytes already
    /// buffered past the request head, then reads the socket. The connection stops managing the socket.
    /// </summary>
    internal Stream Detach()
    {
        _detached = true;
        var leftover = _buffer.AsSpan(_start, _end - _start).ToArray();
        _start = _end = 0;
        return new PrefixedStream(leftover, new NetworkStream(_socket, ownsSocket: true));
    }

    /// <summary>
    /// Completes when the peer closes or resets the connection (or <paramref name="cancellationToken"/> fires).
    /// Bytes that arrive meanwhile (a pipelined request) are kept for the next request.
    /// </summary>
    internal async Task<bool> WaitForPeerCloseAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                Compact();
                if (_end == _buffer.Length)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                }

                var n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    return true;
                }

                _end += n;
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>Aborts the connection (RST), e.g. after a handler failed mid-response.</summary>
    internal void Abort()
    {
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        _socket.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Compact()
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0 && _end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
    }

    /// <summary>Reads more bytes into the buffer; returns false at end of stream.</summary>
    private async ValueTask<bool> FillAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            throw new InvalidOperationException("read buffer full");
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        int n;
        try
        {
            n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException("timed out waiting for the client");
        }

        _end += n;
        return n > 0;
    }
}
