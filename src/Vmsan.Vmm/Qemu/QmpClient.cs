using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vmsan.Core.Errors;

namespace Vmsan.Vmm.Qemu;

/// <summary>
/// A QEMU Machine Protocol client over the VM's Unix socket: greeting, capability negotiation,
/// commands matched to replies by id, and asynchronous events kept for whoever waits on them.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly Queue<(string Name, JsonNode? Data)> _events = new();
    private readonly CancellationTokenSource _cts = new();
    private Task? _readLoop;
    private long _nextId;
    // Set once, when the read loop ends: from then on nothing can answer a command.
    private VmsanException? _closed;

    /// <summary>How many events <see cref="Events"/> keeps; older ones are dropped (a VM runs for days).</summary>
    public const int MaxEvents = 256;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>The newest events seen (name, data), at most <see cref="MaxEvents"/>, oldest first.</summary>
    public IReadOnlyList<(string Name, JsonNode? Data)> Events
    {
        get
        {
            lock (_events)
                return _events.ToList();
        }
    }

    /// <summary>Commands sent and not yet answered (tests check nothing is left behind).</summary>
    internal int PendingCount => _pending.Count;

    /// <summary>Connects, retrying until <paramref name="timeout"/> while QEMU is still creating the socket.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
                var client = new QmpClient(socket);
                await client.HandshakeAsync(ct).ConfigureAwait(false);
                return client;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                await Task.Delay(10, ct).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                throw new VmsanException(ErrorCode.VmmFailed, $"Cannot connect to QMP socket {socketPath}: {ex.Message}",
                    "The VMM is not running; check `vmsan logs` and `vmsan list`.", ex);
            }
        }
    }

    private async Task HandshakeAsync(CancellationToken ct)
    {
        var greeting = await _reader.ReadLineAsync(ct).ConfigureAwait(false);
        if (greeting is null || !greeting.Contains("\"QMP\"", StringComparison.Ordinal))
            throw new VmsanException(ErrorCode.VmmFailed, $"Unexpected QMP greeting: {greeting}");
        _readLoop = Task.Run(ReadLoopAsync);
        await ExecuteAsync("qmp_capabilities", null, ct).ConfigureAwait(false);
    }

    /// <summary>Runs a command and returns its "return" value; a QMP "error" becomes VMM_FAILED.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var id = "vmsan-" + Interlocked.Increment(ref _nextId);
        var tcs = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var msg = new JsonObject { ["execute"] = command, ["id"] = id };
        if (arguments is not null)
            msg["arguments"] = arguments;
        var line = Encoding.UTF8.GetBytes(msg.ToJsonString() + "\n");
        _pending[id] = tcs;
        try
        {
            // Checked after registering: the read loop marks the client closed before it fails
            // what is pending, so a command either sees the mark here or is failed by the loop.
            if (Volatile.Read(ref _closed) is { } closed)
                throw Closed(command, closed);
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await _stream.WriteAsync(line, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                throw new VmsanException(ErrorCode.VmmFailed, $"QMP connection lost while sending '{command}'.", null, ex);
            }
            finally
            {
                _writeLock.Release();
            }
            using var reg = ct.Register(() => tcs.TrySetCanceled(ct));
            return await tcs.Task.ConfigureAwait(false);
        }
        finally
        {
            // Answered, failed, cancelled or never sent: the entry goes either way, so a late
            // reply finds nothing and a cancelled command leaves nothing behind.
            _pending.TryRemove(id, out _);
        }
    }

    private static VmsanException Closed(string command, VmsanException closed) =>
        new(ErrorCode.VmmFailed, $"QMP connection closed before '{command}' was answered (the VMM exited).", null, closed);

    private async Task ReadLoopAsync()
    {
        Exception? failure = null;
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var line = await _reader.ReadLineAsync(_cts.Token).ConfigureAwait(false);
                if (line is null)
                    break;
                JsonNode? node;
                try
                {
                    node = JsonNode.Parse(line);
                }
                catch (JsonException)
                {
                    continue;
                }
                if (node is not JsonObject obj)
                    continue;
                if (obj["event"] is JsonValue ev)
                {
                    if (ev.TryGetValue<string>(out var name))
                        AddEvent(name, obj["data"]);
                    continue;
                }
                // Ids are ours (strings); anything else is not an answer to us.
                if (obj["id"] is not JsonValue idValue || !idValue.TryGetValue<string>(out var id)
                    || !_pending.TryRemove(id, out var tcs))
                    continue;
                if (obj["error"] is JsonObject err)
                    tcs.TrySetException(new VmsanException(ErrorCode.VmmFailed,
                        $"QMP error {err["class"]?.GetValue<string>()}: {err["desc"]?.GetValue<string>()}"));
                else
                    tcs.TrySetResult(obj["return"]);
            }
        }
        catch (Exception ex)
        {
            // Whatever ended the loop (I/O, dispose, a bug), nothing reads replies any more.
            failure = ex;
        }
        // Mark closed first (a full fence), then fail every waiter, so a command registered
        // meanwhile sees the mark (see ExecuteAsync) rather than wait for a reply that never comes.
        var closed = new VmsanException(ErrorCode.VmmFailed, "QMP connection closed (the VMM exited).", null, failure);
        Interlocked.CompareExchange(ref _closed, closed, null);
        foreach (var key in _pending.Keys)
        {
            if (_pending.TryRemove(key, out var tcs))
                tcs.TrySetException(closed);
        }
    }

    private void AddEvent(string name, JsonNode? data)
    {
        lock (_events)
        {
            if (_events.Count == MaxEvents)
                _events.Dequeue();
            _events.Enqueue((name, data));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already disconnected by the peer.
        }
        _reader.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_readLoop is not null)
            await _readLoop.ConfigureAwait(false);
        _cts.Dispose();
        _writeLock.Dispose();
    }
}
