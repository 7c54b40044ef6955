using System.Buffers.Binary;

namespace Vmsan.Agent.Protocol;

/// <summary>
/// Reads frames from a stream that may deliver them split at any byte boundary.
/// A clean end of stream between frames ends the sequence; an end inside a frame, or a frame larger
/// than the limit, throws <see cref="FrameFormatException"/>.
/// </summary>
public sealed class FrameReader
{
    private readonly Stream _stream;
    private readonly int _maxPayload;
    private readonly byte[] _header = new byte[FrameCodec.HeaderSize];
    private byte[] _payload = new byte[4096];

    /// <summary>Creates a reader over <paramref name="stream"/> (not owned).</summary>
    /// <param name="stream">The source.</param>
    /// <param name="maxPayload">Largest payload accepted.</param>
    public FrameReader(Stream stream, int maxPayload = AgentProtocol.DefaultMaxFramePayload)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPayload);
        _stream = stream;
        _maxPayload = maxPayload;
    }

    /// <summary>
    /// Reads the next frame, or returns null at a clean end of stream. The returned payload is only valid
    /// until the next call.
    /// </summary>
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken = default)
    {
        var got = await FillAsync(_header, cancellationToken).ConfigureAwait(false);
        if (got == 0)
        {
            return null;
        }

        if (got < FrameCodec.HeaderSize)
        {
            throw new FrameFormatException($"stream ended inside a frame header ({got} of {FrameCodec.HeaderSize} bytes)");
        }

        var type = (FrameType)_header[0];
        var length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(1));
        if (length > (uint)_maxPayload)
        {
            throw new FrameFormatException($"frame of {length} bytes exceeds the limit of {_maxPayload}");
        }

        if (_payload.Length < length)
        {
            _payload = new byte[Math.Max((int)length, _payload.Length * 2)];
        }

        var payload = _payload.AsMemory(0, (int)length);
        got = await FillAsync(payload, cancellationToken).ConfigureAwait(false);
        if (got < length)
        {
            throw new FrameFormatException($"stream ended inside a {type} frame ({got} of {length} payload bytes)");
        }

        return new Frame(type, payload);
    }

    private async ValueTask<int> FillAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}
