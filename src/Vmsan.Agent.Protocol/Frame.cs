using System.Buffers.Binary;

namespace Vmsan.Agent.Protocol;

/// <summary>One decoded frame.</summary>
/// <param name="Type">The frame type (unknown type bytes are passed through).</param>
/// <param name="Payload">The payload; when returned by <see cref="FrameReader"/> it is only valid until the next read.</param>
public readonly record struct Frame(FrameType Type, ReadOnlyMemory<byte> Payload);

/// <summary>Encoding helpers for the frame header.</summary>
public static class FrameCodec
{
    /// <summary>Size of a frame header: one type byte and a 4-byte big-endian length.</summary>
    public const int HeaderSize = 5;

    /// <summary>Writes a frame header into <paramref name="destination"/>.</summary>
    public static void WriteHeader(Span<byte> destination, FrameType type, int payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        destination[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(destination[1..HeaderSize], payloadLength);
    }

    /// <summary>Encodes a whole frame into a new array.</summary>
    public static byte[] Encode(FrameType type, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[HeaderSize + payload.Length];
        WriteHeader(frame, type, payload.Length);
        payload.CopyTo(frame.AsSpan(HeaderSize));
        return frame;
    }
}

/// <summary>The frame stream is malformed: truncated, or a frame exceeds the size limit.</summary>
public sealed class FrameFormatException : IOException
{
    /// <summary>Creates the exception.</summary>
    public FrameFormatException(string message) : base(message)
    {
    }
}
