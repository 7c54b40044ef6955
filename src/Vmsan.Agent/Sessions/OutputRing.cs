using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Sessions;

/// <summary>
/// The recent output of a detached exec, as encoded frames in arrival order (so a replay interleaves stdout and
/// stderr as they came), bounded per stream: when a stream's bytes exceed the budget its oldest frames are dropped.
/// Not thread-safe: the session's lock guards it.
/// </summary>
internal sealed class OutputRing(int bytesPerStream)
{
    private readonly LinkedList<(FrameType Type, byte[] Frame)> _frames = new();
    private long _stdout;
    private long _stderr;

    /// <summary>Bytes dropped from the front so far (a replay starting with a gap can say so).</summary>
    public long Dropped { get; private set; }

    public void Add(FrameType type, byte[] frame)
    {
        var payload = frame.Length - FrameCodec.HeaderSize;
        if (payload > bytesPerStream)
        {
            // Keep only the tail of an oversized chunk.
            var tail = frame.AsSpan(frame.Length - bytesPerStream);
            Dropped += payload - bytesPerStream;
            frame = FrameCodec.Encode(type, tail);
            payload = bytesPerStream;
        }

        _frames.AddLast((type, frame));
        ref var count = ref type == FrameType.Stderr ? ref _stderr : ref _stdout;
        count += payload;
        var node = _frames.First;
        while (count > bytesPerStream && node is not null)
        {
            var next = node.Next;
            if (node.Value.Type == type)
            {
                var size = node.Value.Frame.Length - FrameCodec.HeaderSize;
                count -= size;
                Dropped += size;
                _frames.Remove(node);
            }

            node = next;
        }
    }

    public IEnumerable<byte[]> Frames => _frames.Select(f => f.Frame);
}
