using System.Buffers;

namespace Vmsan.Agent.Protocol;

/// <summary>
/// Writes frames to a stream. Header and payload go out in one <see cref="Stream.Write(byte[], int, int)"/>
/// call so a chunked HTTP body carries each frame in one chunk. Not thread-safe: callers serialize.
/// </summary>
public sealed class FrameWriter
{
    private readonly Stream _stream;

    /// <summary>Creates a writer over <paramref name="stream"/> (not owned).</summary>
    public FrameWriter(Stream stream) => _stream = stream ?? throw new ArgumentNullException(nameof(stream));

    /// <summary>Writes one frame synchronously.</summary>
    public void WriteFrame(FrameType type, ReadOnlySpan<byte> payload)
    {
        var length = FrameCodec.HeaderSize + payload.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            FrameCodec.WriteHeader(buffer, type, payload.Length);
            payload.CopyTo(buffer.AsSpan(FrameCodec.HeaderSize));
            _stream.Write(buffer, 0, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes one frame.</summary>
    public async ValueTask WriteFrameAsync(FrameType type, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        var length = FrameCodec.HeaderSize + payload.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            FrameCodec.WriteHeader(buffer, type, payload.Length);
            payload.Span.CopyTo(buffer.AsSpan(FrameCodec.HeaderSize));
            await _stream.WriteAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
