using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan.Network.Ports;

/// <summary>
/// Published ports, docker-proxy style: listens in the namespace vmsan runs in (loopback and every
/// other address, or the one given) and relays each connection to the guest through a socket
/// created in the VM's namespace. Inbound, so no egress policy applies; the guest sees the
/// connection come from its gateway. Lives as long as the supervisor.
/// </summary>
public sealed class PortForwarder : IAsyncDisposable
{
    private static readonly TimeSpan UdpIdle = TimeSpan.FromSeconds(60);
    private readonly string _netns;
    private readonly List<Socket> _listeners = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly List<Task> _loops = [];
    private readonly Action<string>? _log;

    private PortForwarder(string netns, Action<string>? log)
    {
        _netns = netns;
        _log = log;
    }

    /// <summary>Binds every port (PORT_IN_USE if one is taken; none stays bound then) and starts relaying.</summary>
    public static PortForwarder Start(string netns, IReadOnlyList<PublishedPort> ports, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(ports);
        var f = new PortForwarder(netns, log);
        try
        {
            foreach (var p in ports)
            {
                List<Socket> sockets;
                try
                {
                    sockets = PortSpec.BindAll(p);
                }
                catch (SocketException ex)
                {
                    throw new VmsanException(ErrorCode.PortInUse, $"Cannot publish {p}: {ex.Message}.",
                        "Pick another host port, or stop what holds it (ss -ltnup shows it).", ex);
                }
                foreach (var s in sockets)
                {
                    f._listeners.Add(s);
                    f._loops.Add(p.Protocol == "tcp" ? f.AcceptLoopAsync(s, p) : f.UdpLoopAsync(s, p));
                }
            }
        }
        catch
        {
            f.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        return f;
    }

    private IPEndPoint Guest(PublishedPort p) => new(VmNetworkPlan.GuestAddress, p.GuestPort);

    private async Task AcceptLoopAsync(Socket listener, PublishedPort p)
    {
        await Task.Yield();
        while (!_cts.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = RelayAsync(client, p);
        }
    }

    private async Task RelayAsync(Socket client, PublishedPort p)
    {
        using (client)
        {
            Socket upstream;
            try
            {
                upstream = await NamespaceSocket.ConnectAsync(_netns, Guest(p), _cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // The guest refused (or is not up): the client sees its connection reset, as from a closed port.
                _log?.Invoke($"published {p}: cannot reach the guest: {ex.Message}");
                client.LingerState = new LingerOption(true, 0);
                return;
            }
            using (upstream)
            {
                client.NoDelay = true;
                upstream.NoDelay = true;
                await Task.WhenAll(CopyAsync(client, upstream), CopyAsync(upstream, client)).ConfigureAwait(false);
            }
        }
    }

    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                if (n == 0)
                    break;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _cts.Token).ConfigureAwait(false);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            try
            {
                from.Shutdown(SocketShutdown.Both);
                to.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    private async Task UdpLoopAsync(Socket listener, PublishedPort p)
    {
        await Task.Yield();
        var sessions = new ConcurrentDictionary<EndPoint, (Socket Upstream, DateTime LastSeen)>();
        var buffer = new byte[65535];
        var any = new IPEndPoint(listener.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!_cts.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try
            {
                r = await listener.ReceiveFromAsync(buffer, SocketFlags.None, any, _cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException)
            {
                continue;
            }
            var peer = r.RemoteEndPoint;
            if (!sessions.TryGetValue(peer, out var session))
            {
                var up = await NamespaceSocket.CreateAsync(_netns, AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp).ConfigureAwait(false);
                await up.ConnectAsync(Guest(p)).ConfigureAwait(false);
                session = (up, DateTime.UtcNow);
                sessions[peer] = session;
                _ = UdpReplyLoopAsync(listener, up, peer, sessions);
            }
            sessions[peer] = (session.Upstream, DateTime.UtcNow);
            try
            {
                await session.Upstream.SendAsync(buffer.AsMemory(0, r.ReceivedBytes), SocketFlags.None).ConfigureAwait(false);
            }
            catch (SocketException)
            {
            }
        }
        foreach (var s in sessions.Values)
            s.Upstream.Dispose();
    }

    private async Task UdpReplyLoopAsync(Socket listener, Socket upstream, EndPoint peer,
        ConcurrentDictionary<EndPoint, (Socket Upstream, DateTime LastSeen)> sessions)
    {
        var buffer = new byte[65535];
        while (!_cts.IsCancellationRequested)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
            idle.CancelAfter(UdpIdle);
            try
            {
                var n = await upstream.ReceiveAsync(buffer, SocketFlags.None, idle.Token).ConfigureAwait(false);
                await listener.SendToAsync(buffer.AsMemory(0, n), SocketFlags.None, peer).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                if (sessions.TryGetValue(peer, out var s) && DateTime.UtcNow - s.LastSeen < UdpIdle)
                    continue;
                break;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // ICMP port unreachable from the guest surfaces here; keep the session for the next datagram.
                if (_cts.IsCancellationRequested)
                    break;
                await Task.Delay(50).ConfigureAwait(false);
            }
        }
        sessions.TryRemove(peer, out _);
        upstream.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        foreach (var l in _listeners)
            l.Dispose();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        _cts.Dispose();
    }
}
