using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vmsan.Agent.Http;

/// <summary>
/// A streamed response body: each write goes out at once as one HTTP chunk (large ones by a gathering send, without a copy) (or raw bytes for an HTTP/1.0
/// client, where the end of the body is the end of the connection). Writes must be serialized by the caller.
/// </summary>
internal sealed class ResponseBodyStream : Stream
{
    /// <summary>From this size on, a chunk is sent by gathering (no copy into a framed buffer).</summary>
    private const int GatherThreshold = 4096;

    private static readonly byte[] Crlf = "\r\n"u8.ToArray();

    private readonly Stream _inner;
    private readonly bool _chunked;
    private bool _completed;

    public ResponseBodyStream(Stream inner, bool chunked)
    {
        _inner = inner;
        _chunked = chunked;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (buffer.IsEmpty)
        {
            return;
        }

        if (!_chunked)
        {
            _inner.Write(buffer);
            return;
        }

        var frame = ArrayPool<byte>.Shared.Rent(buffer.Length + 32);
        try
        {
            var n = Encode(buffer, frame);
            _inner.Write(frame, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (buffer.IsEmpty)
        {
            return;
        }

        if (!_chunked)
        {
            await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (buffer.Length >= GatherThreshold && _inner is NetworkStream network
            && MemoryMarshal.TryGetArray(buffer, out var data))
        {
            // One sendmsg of [size line, data, CRLF]: large bodies are not copied into a frame first.
            var head = new byte[20];
            buffer.Length.TryFormat(head, out var written, "X", CultureInfo.InvariantCulture);
            head[written++] = (byte)'\r';
            head[written++] = (byte)'\n';
            await SendAllAsync(network.Socket, [new ArraySegment<byte>(head, 0, written), data, new ArraySegment<byte>(Crlf)]).ConfigureAwait(false);
            return;
        }

        var frame = ArrayPool<byte>.Shared.Rent(buffer.Length + 32);
        try
        {
            var n = Encode(buffer.Span, frame);
            await _inner.WriteAsync(frame.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Sends every byte of <paramref name="segments"/> (a gathered send may be partial).</summary>
    private static async ValueTask SendAllAsync(Socket socket, List<ArraySegment<byte>> segments)
    {
        while (segments.Count > 0)
        {
            var sent = await socket.SendAsync(segments, SocketFlags.None).ConfigureAwait(false);
            if (sent <= 0)
            {
                throw new IOException("connection closed while sending");
            }

            while (sent > 0 && segments.Count > 0)
            {
                if (sent >= segments[0].Count)
                {
                    sent -= segments[0].Count;
                    segments.RemoveAt(0);
                }
                else
                {
                    segments[0] = segments[0][sent..];
                    sent = 0;
                }
            }
        }
    }

    /// <summary>Ends the body (the zero-length chunk).</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        if (_chunked)
        {
            await _inner.WriteAsync("0\r\n\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        }
    }

    private static int Encode(ReadOnlySpan<byte> data, byte[] destination)
    {
        var span = destination.AsSpan();
        data.Length.TryFormat(span, out var written, "X", CultureInfo.InvariantCulture);
        span[written++] = (byte)'\r';
        span[written++] = (byte)'\n';
        data.CopyTo(span[written..]);
        written += data.Length;
        span[written++] = (byte)'\r';
        span[written++] = (byte)'\n';
        return written;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
