using CsCheck;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Tests;

public sealed class FrameCodecTests
{
    private static readonly Gen<(FrameType Type, byte[] Payload)> GenFrame =
        Gen.Select(Gen.Byte[1, 7], Gen.Byte.Array[0, 600], (t, p) => ((FrameType)t, p));

    private static readonly Gen<(FrameType Type, byte[] Payload)[]> GenFrames = GenFrame.Array[0, 12];

    /// <summary>Read sizes the fake stream hands out in turn (1 byte up to a few KiB).</summary>
    private static readonly Gen<int[]> GenSplits = Gen.Int[1, 2000].Array[1, 8];

    [Fact(Timeout = 30_000)]
    public async Task Any_frame_sequence_round_trips_whatever_the_read_boundaries()
    {
        await Gen.Select(GenFrames, GenSplits).SampleAsync(async (frames, splits) =>
        {
            var encoded = await EncodeAsync(frames);
            var reader = new FrameReader(new ChoppyStream(encoded, splits));

            var decoded = new List<(FrameType, byte[])>();
            while (await reader.ReadFrameAsync(TestContext.Current.CancellationToken) is { } frame)
            {
                decoded.Add((frame.Type, frame.Payload.ToArray()));
            }

            Assert.Equal(frames.Length, decoded.Count);
            for (var i = 0; i < frames.Length; i++)
            {
                Assert.Equal(frames[i].Type, decoded[i].Item1);
                Assert.Equal(frames[i].Payload, decoded[i].Item2);
            }
        }, iter: 500);
    }

    [Fact(Timeout = 30_000)]
    public async Task Input_truncated_inside_a_frame_fails_cleanly_after_the_complete_frames()
    {
        var gen = Gen.Select(GenFrame.Array[1, 8], Gen.Double[0, 1], GenSplits);
        await gen.SampleAsync(async (frames, cutFraction, splits) =>
        {
            var encoded = await EncodeAsync(frames);
            var lastStart = encoded.Length - FrameCodec.HeaderSize - frames[^1].Payload.Length;
            // Cut strictly inside the last frame: after its first byte, before its end.
            var cut = lastStart + 1 + (int)(cutFraction * (encoded.Length - lastStart - 2));
            cut = Math.Clamp(cut, lastStart + 1, encoded.Length - 1);
            var reader = new FrameReader(new ChoppyStream(encoded[..cut], splits));

            for (var i = 0; i < frames.Length - 1; i++)
            {
                var frame = await reader.ReadFrameAsync(TestContext.Current.CancellationToken);
                Assert.NotNull(frame);
                Assert.Equal(frames[i].Payload, frame.Value.Payload.ToArray());
            }

            await Assert.ThrowsAsync<FrameFormatException>(async () => await reader.ReadFrameAsync(TestContext.Current.CancellationToken));
        }, iter: 300);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_frame_larger_than_the_limit_is_rejected_before_its_payload_is_read()
    {
        var header = new byte[FrameCodec.HeaderSize];
        FrameCodec.WriteHeader(header, FrameType.Stdout, 1_000_000);
        var reader = new FrameReader(new MemoryStream(header), maxPayload: 64 * 1024);

        var e = await Assert.ThrowsAsync<FrameFormatException>(async () => await reader.ReadFrameAsync(TestContext.Current.CancellationToken));

        Assert.Contains("exceeds", e.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_empty_stream_is_a_clean_end()
    {
        var reader = new FrameReader(new MemoryStream());

        Assert.Null(await reader.ReadFrameAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public void The_header_is_type_then_big_endian_length()
    {
        var frame = FrameCodec.Encode(FrameType.Exit, new byte[258]);

        Assert.Equal(new byte[] { 3, 0, 0, 1, 2 }, frame[..5]);
        Assert.Equal(5 + 258, frame.Length);
    }

    private static async Task<byte[]> EncodeAsync((FrameType Type, byte[] Payload)[] frames)
    {
        using var output = new MemoryStream();
        var writer = new FrameWriter(output);
        foreach (var (type, payload) in frames)
        {
            await writer.WriteFrameAsync(type, payload, TestContext.Current.CancellationToken);
        }

        return output.ToArray();
    }

    /// <summary>Returns at most the next split size per read, cycling through the sizes.</summary>
    private sealed class ChoppyStream(byte[] data, int[] splits) : Stream
    {
        private int _position;
        private int _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(buffer.Length, splits[_read++ % splits.Length]), data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
