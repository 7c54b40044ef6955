using System.Net.Sockets;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Vmsan.Agent.Sessions;

/// <summary>
/// One client attached to a session (over a WebSocket, or the chunked body of POST /exec): frames queue here and one
/// loop sends them, so a slow client delays only itself (the session's pumps wait for it up to <see cref="HighWater"/>
/// queued bytes).
/// </summary>
internal sealed class Viewer
{
    /// <summary>Queued bytes above which the producer waits (back-pressure on the process).</summary>
    public const long HighWater = 1024 * 1024;

    private readonly IViewerTransport _transport;
    private readonly Channel<byte[]> _queue = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ManualResetEventSlim _drained = new(true);
    private long _pending;
    private volatile bool _closed;

    public Viewer(IViewerTransport transport)
    {
        _transport = transport;
        SendLoop = Task.Run(SendLoopAsync);
    }

    /// <summary>Completes when everything queued was sent (and the close was sent), or the viewer broke.</summary>
    public Task SendLoop { get; }

    public bool Closed => _closed;

    public void Enqueue(byte[] frame)
    {
        if (_closed)
        {
            return;
        }

        Interlocked.Add(ref _pending, frame.Length);
        if (!_queue.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _pending, -frame.Length);
        }
    }

    /// <summary>No more frames: the loop sends what is queued, then a normal close.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Drops the viewer at once (disconnect, or too slow).</summary>
    public void Abort()
    {
        _closed = true;
        _queue.Writer.TryComplete();
        _drained.Set();
        _transport.Abort();
    }

    /// <summary>Blocks the calling (pump) thread while too much is queued; false when it gave up after <paramref name="limit"/>.</summary>
    public bool WaitForRoom(TimeSpan limit)
    {
        var deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (!_closed && Interlocked.Read(ref _pending) > HighWater)
        {
            _drained.Reset();
            if (Interlocked.Read(ref _pending) <= HighWater)
            {
                break;
            }

            if (limit != Timeout.InfiniteTimeSpan && Environment.TickCount64 > deadline)
            {
                return false;
            }

            _drained.Wait(50);
        }

        return true;
    }

    private async Task SendLoopAsync()
    {
        try
        {
            await foreach (var frame in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                if (_closed)
                {
                    // Aborted: what is still queued has nowhere to go.
                    break;
                }

                await _transport.SendAsync(frame).ConfigureAwait(false);
                if (Interlocked.Add(ref _pending, -frame.Length) <= HighWater / 2)
                {
                    _drained.Set();
                }
            }

            if (!_closed)
            {
                await _transport.CompleteAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            AgentLog.Debug($"viewer send failed: {e.Message}");
            _closed = true;
            _drained.Set();
        }
    }
}
