using System.Globalization;
using System.Net.Sockets;

namespace Vmsan.Agent.Http;

/// <summary>The request body is larger than the endpoint accepts (answered 413).</summary>
internal sealed class RequestBodyTooLargeException(long limit) : Exception($"body larger than {limit} bytes")
{
    public long Limit { get; } = limit;
}

internal sealed partial class HttpConnection
{
    /// <summary>
    /// A read-only stream over the request body (Content-Length or chunked), decoded as it arrives: for bodies
    /// too large to buffer (file uploads). Sends <c>100 Continue</c> on the first read. Reading past
    /// <paramref name="maxBytes"/> throws <see cref="RequestBodyTooLargeException"/>; a client that stalls for the
    /// request timeout or goes away makes reads throw <see cref="IOException"/>.
    /// </summary>
    internal Stream OpenRequestBody(HttpRequest request, long maxBytes) => new RequestBodyStream(this, request, maxBytes);

    private sealed class RequestBodyStream(HttpConnection connection, HttpRequest request, long maxBytes) : Stream
    {
        private bool _started;
        private long _remainingInChunk = request.ContentLength ?? 0;
        private long _total;
        private bool _done = !request.HasBody || request.BodyConsumed;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            if (_done || destination.IsEmpty)
            {
                return 0;
            }

            if (!_started)
            {
                _started = true;
                if (request.ContentLength > maxBytes)
                {
                    throw new RequestBodyTooLargeException(maxBytes);
                }

                await connection.SendContinueIfExpectedAsync(request, cancellationToken).ConfigureAwait(false);
            }

            if (_remainingInChunk == 0)
            {
                if (!request.Chunked || !await NextChunkAsync(cancellationToken).ConfigureAwait(false))
                {
                    Finish();
                    return 0;
                }
            }

            var want = (int)Math.Min(destination.Length, _remainingInChunk);
            var n = await connection.ReadBodyBytesAsync(destination[..want], cancellationToken).ConfigureAwait(false);
            _remainingInChunk -= n;
            _total += n;
            if (_total > maxBytes)
            {
                throw new RequestBodyTooLargeException(maxBytes);
            }

            if (_remainingInChunk == 0)
            {
                if (request.Chunked)
                {
                    if ((await connection.ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length != 0)
                    {
                        throw new HttpBadRequestException("missing CRLF after a chunk");
                    }
                }
                else
                {
                    Finish();
                }
            }

            return n;
        }

        private async ValueTask<bool> NextChunkAsync(CancellationToken cancellationToken)
        {
            var line = await connection.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            var semicolon = line.IndexOf(';', StringComparison.Ordinal);
            var sizeText = (semicolon < 0 ? line : line[..semicolon]).Trim();
            if (sizeText.Length is 0 or > 15 ||
                !long.TryParse(sizeText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size) || size < 0)
            {
                throw new HttpBadRequestException("malformed chunk size");
            }

            if (size == 0)
            {
                while ((await connection.ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length > 0)
                {
                }

                return false;
            }

            _remainingInChunk = size;
            return true;
        }

        private void Finish()
        {
            _done = true;
            request.BodyConsumed = true;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Reads up to <c>destination.Length</c> body bytes: buffered ones first, else straight from the socket.</summary>
    private async ValueTask<int> ReadBodyBytesAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            if (destination.Length >= 16 * 1024)
            {
                // Large reads bypass the head buffer: one copy less on the upload path.
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cts.CancelAfter(_limits.RequestTimeout);
                int received;
                try
                {
                    received = await _socket.ReceiveAsync(destination, SocketFlags.None, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new IOException("timed out waiting for the client");
                }

                return received > 0 ? received : throw new IOException("connection closed inside a request body");
            }

            if (!await FillAsync(_limits.RequestTimeout, cancellationToken).ConfigureAwait(false))
            {
                throw new IOException("connection closed inside a request body");
            }
        }

        var take = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, take).CopyTo(destination.Span);
        _start += take;
        return take;
    }
}

internal sealed partial class HttpConnection
{
    /// <summary>Half-closes and drains briefly, so an error response is not destroyed by an RST (the caller then lets the connection close).</summary>
    internal Task CloseGracefullyAsync() => LingerCloseAsync();
}
