using System.Net;
using System.Net.Sockets;

namespace Vmsan.Agent.Http;

/// <summary>
/// Accepts TCP connections and serves each on its own async loop. Guards (<see cref="HttpLimits"/>): connections from
/// anyone but the allowed peer are closed at accept; at most <see cref="HttpLimits.MaxConnections"/> are served, and at
/// the cap a new connection evicts the oldest one still waiting for its first request head, so clients that connect
/// and never (or slowly) send cannot take every slot.
/// </summary>
internal sealed class HttpServer : IDisposable
{
    private readonly Socket _listener;
    private readonly Router _router;
    private readonly HttpLimits _limits;
    private readonly CancellationTokenSource _stopping = new();
    private readonly LinkedList<HttpConnection> _connections = new();
    private long _refusedPeers;
    private long _refusedBusy;

    public HttpServer(IPEndPoint endPoint, Router router, HttpLimits limits)
    {
        _router = router;
        _limits = limits;
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endPoint);
        _listener.Listen(512);
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public CancellationToken Stopping => _stopping.Token;

    public async Task RunAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e)
            {
                // EMFILE and friends: back off instead of spinning.
                AgentLog.Warn($"accept: {e.Message}");
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }

            if (_limits.AllowedPeer is { } allowed && !(client.RemoteEndPoint is IPEndPoint peer && peer.Address.Equals(allowed)))
            {
                // Guest processes (loopback, the guest's own address) and anything else: not the host.
                if (Interlocked.Increment(ref _refusedPeers) is 1 or 1000 or 100000)
                {
                    AgentLog.Warn($"refused a connection from {client.RemoteEndPoint} (only {allowed} is served; {_refusedPeers} so far)");
                }

                client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                continue;
            }

            var connection = new HttpConnection(client, _limits);
            if (!Admit(connection))
            {
                if (Interlocked.Increment(ref _refusedBusy) is 1 or 1000 or 100000)
                {
                    // Rate-limited: the serial console is slow under emulation.
                    AgentLog.Warn($"refused a connection from {connection.RemoteEndPoint}: {_limits.MaxConnections} connections are busy ({_refusedBusy} so far)");
                }

                connection.Abort();
                continue;
            }

            _ = ServeAsync(connection);
        }
    }

    private async Task ServeAsync(HttpConnection connection)
    {
        LinkedListNode<HttpConnection>? node;
        lock (_connections)
        {
            node = _connections.AddLast(connection);
        }

        try
        {
            await connection.RunAsync(_router, _stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            lock (_connections)
            {
                if (node.List is not null)
                {
                    _connections.Remove(node);
                }
            }
        }
    }

    /// <summary>Makes room for one more connection: true when there is (evicting the oldest one without a request if needed).</summary>
    private bool Admit(HttpConnection connection)
    {
        HttpConnection? evicted = null;
        lock (_connections)
        {
            if (_connections.Count < _limits.MaxConnections)
            {
                return true;
            }

            for (var n = _connections.First; n is not null; n = n.Next)
            {
                if (!n.Value.HasRequest)
                {
                    evicted = n.Value;
                    _connections.Remove(n);
                    break;
                }
            }
        }

        if (evicted is null)
        {
            return false;
        }

        AgentLog.Debug($"at {_limits.MaxConnections} connections: closed {evicted.RemoteEndPoint} (no request yet) for {connection.RemoteEndPoint}");
        evicted.Abort();
        return true;
    }

    public void Stop()
    {
        _stopping.Cancel();
        _listener.Dispose();
    }

    public void Dispose()
    {
        Stop();
        _stopping.Dispose();
    }
}
