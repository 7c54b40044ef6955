using System.Net;
using System.Net.Sockets;
using Vmsan.Network.Logging;

namespace Vmsan.Network.Dns;

/// <summary>
/// Serves a VM's DNS filter on UDP and TCP (the guest's gateway, port 53, with sockets created in
/// the VM's namespace): answers refused names itself, forwards allowed ones through
/// <see cref="IDnsUpstream"/>, pins answered addresses (in the kernel set before the guest sees
/// the answer, so its connect() right after never races the pin) and logs each decision.
/// </summary>
public sealed class DnsFilterServer : IAsyncDisposable
{
    private const int MaxInFlight = 256;
    private const int MaxTcpConnections = 32;
    private static readonly TimeSpan TcpIdle = TimeSpan.FromSeconds(10);

    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly DnsFilter _filter;
    private readonly IDnsUpstream _upstream;
    private readonly PinTable _pins;
    private readonly IPinSink _sink;
    private readonly NetworkLog _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _inFlight = new(MaxInFlight);
    private readonly DnsCache _cache = new();
    private readonly SemaphoreSlim _tcpSlots = new(MaxTcpConnections);
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;

    private DnsFilterServer(Socket udp, Socket tcp, DnsFilter filter, IDnsUpstream upstream, PinTable pins, IPinSink sink, NetworkLog log)
    {
        _udp = udp;
        _tcp = tcp;
        _filter = filter;
        _upstream = upstream;
        _pins = pins;
        _sink = sink;
        _log = log;
        var udpDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A dedicated thread blocked in recvfrom(): a query wakes one thread, and local answers and
        // cache hits go back from it at once (no hop through the async machinery and the pool,
        // which cost more than the whole answer on a busy host). Only upstream queries go async.
        var t = new Thread(() =>
        {
            try
            {
                UdpLoop();
            }
            finally
            {
                udpDone.SetResult();
            }
        })
        { IsBackground = true, Name = "vmsan-dns-udp" };
        t.UnsafeStart();
        _udpLoop = udpDone.Task;
        _tcpLoop = Task.Run(TcpLoopAsync);
    }

    /// <summary>The UDP endpoint actually bound (the port when 0 was asked).</summary>
    public IPEndPoint UdpEndPoint => (IPEndPoint)_udp.LocalEndPoint!;

    public IPEndPoint TcpEndPoint => (IPEndPoint)_tcp.LocalEndPoint!;

    /// <summary>Binds <paramref name="listen"/> (UDP and TCP) inside <paramref name="netns"/> (null: this process's namespace) and starts serving.</summary>
    public static async Task<DnsFilterServer> StartAsync(string? netns, IPEndPoint listen, DnsFilter filter, IDnsUpstream upstream,
        PinTable pins, IPinSink sink, NetworkLog log, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(pins);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(log);
        (Socket, Socket) Bind()
        {
            // Port 0 (tests): the TCP socket takes the port UDP was given, which a TCP socket of another process may
            // hold already; another UDP port is then tried.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return BindOnce();
                }
                catch (SocketException e) when (listen.Port == 0 && e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 20)
                {
                }
            }
        }

        (Socket, Socket) BindOnce()
        {
            var udp = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            var tcp = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                udp.Bind(listen);
                tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                // The same port for TCP as UDP got (tests bind port 0).
                tcp.Bind(new IPEndPoint(listen.Address, ((IPEndPoint)udp.LocalEndPoint!).Port));
                tcp.Listen(64);
                return (udp, tcp);
            }
            catch
            {
                udp.Dispose();
                tcp.Dispose();
                throw;
            }
        }

        ct.ThrowIfCancellationRequested();
        var (u, t) = netns is null ? Bind() : await NetnsThread.RunAsync(netns, Bind).ConfigureAwait(false);
        return new DnsFilterServer(u, t, filter, upstream, pins, sink, log);
    }

    private void UdpLoop()
    {
        var ct = _stop.Token;
        var buf = new byte[65535];
        EndPoint any = new IPEndPoint(_udp.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        while (!ct.IsCancellationRequested)
        {
            int n;
            EndPoint peer = any;
            try
            {
                n = _udp.ReceiveFrom(buf, SocketFlags.None, ref peer);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException) when (!ct.IsCancellationRequested)
            {
                continue; // an ICMP error from an earlier reply; keep serving
            }
            catch (SocketException)
            {
                return;
            }
            var query = buf.AsSpan(0, n).ToArray();
            try
            {
                if (TryAnswerNow(query, tcp: false) is { } now)
                {
                    if (now.Length > 0)
                        _udp.SendTo(now, SocketFlags.None, peer);
                    continue;
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                continue;
            }
            // A flood past this many upstream queries at once is dropped, like a busy resolver would.
            if (!_inFlight.Wait(0))
                continue;
            var to = peer;
            _ = Task.Run(async () =>
            {
                try
                {
                    var reply = await HandleAsync(query, tcp: false, ct).ConfigureAwait(false);
                    // Synchronous: an async call would switch the socket to the emulated mode that
                    // costs the receive thread its direct wake-up. A UDP send does not block.
                    if (reply is not null)
                        _udp.SendTo(reply, SocketFlags.None, to);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                }
                finally
                {
                    _inFlight.Release();
                }
            }, CancellationToken.None);
        }
    }

    private async Task TcpLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket c;
            try
            {
                c = await _tcp.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (!_tcpSlots.Wait(0))
            {
                c.Dispose();
                continue;
            }
            _ = Task.Run(async () =>
            {
                using (c)
                {
                    try
                    {
                        while (true)
                        {
                            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                            idle.CancelAfter(TcpIdle);
                            var msg = await DnsTcp.ReadFrameAsync(c, idle.Token).ConfigureAwait(false);
                            if (msg is null)
                                return;
                            var reply = await HandleAsync(msg, tcp: true, ct).ConfigureAwait(false);
                            if (reply is null)
                                return;
                            await DnsTcp.WriteFrameAsync(c, reply, ct).ConfigureAwait(false);
                        }
                    }
                    catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
                    {
                    }
                    finally
                    {
                        _tcpSlots.Release();
                    }
                }
            }, CancellationToken.None);
        }
    }

    /// <summary>
    /// The reply when it needs no upstream and no nft run (a refusal, or a cached answer whose pins
    /// are in the kernel already); an empty array to send nothing; null to go the async way.
    /// </summary>
    private byte[]? TryAnswerNow(byte[] wire, bool tcp)
    {
        var d = _filter.Inspect(wire);
        var q = d.Query?.Questions.Count == 1 ? d.Query.Questions[0] : null;
        if (d.LocalReply is not null)
        {
            _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", d.Action, q?.Name, q is null ? null : DnsType.Name(q.Type), Rule: d.Rule));
            return d.LocalReply;
        }
        if (d.Upstream is null || d.Query is null || q is null)
            return [];
        if (_cache.Get(q) is not { } cached)
            return null;
        var f = _filter.Filter(d.Query, cached);
        var policy = _filter.Policy;
        if (policy.Pins && d.Rule is not null && f.Pins.Count > 0 && _pins.Add(d.Rule, f.Pins) is { Count: > 0 } elements)
        {
            // The kernel's pin runs low: refresh it before answering (async path). The table already
            // counts these as refreshed; forget that, so the async path does the nft run.
            _pins.KernelFailed(elements);
            return null;
        }
        return Finish(d, q, f, tcp, cached: true);
    }

    private byte[] Finish(QueryDecision d, DnsQuestion q, FilteredAnswer f, bool tcp, bool cached)
    {
        if (f.Dropped.Count > 0)
            _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", "dropped", q.Name, DnsType.Name(q.Type),
                Answer: [.. f.Dropped.Select(a => a.ToString())], Rule: "rebinding"));
        _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", "answered", q.Name, DnsType.Name(q.Type),
            Answer: [.. f.Reply.Answers.Select(Describe)], Rule: cached ? d.Rule + " (cached)" : d.Rule));
        var bytes = f.Reply.Encode();
        return !tcp && bytes.Length > DnsFilter.UdpLimit(d.Query!) ? DnsFilter.Truncated(f.Reply) : bytes;
    }

    /// <summary>The reply to one query (null: send nothing).</summary>
    internal async Task<byte[]?> HandleAsync(byte[] wire, bool tcp, CancellationToken ct)
    {
        var d = _filter.Inspect(wire);
        var q = d.Query?.Questions.Count == 1 ? d.Query.Questions[0] : null;
        if (d.LocalReply is not null)
        {
            _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", d.Action, q?.Name, q is null ? null : DnsType.Name(q.Type), Rule: d.Rule));
            return d.LocalReply;
        }
        if (d.Upstream is null || d.Query is null || q is null)
            return null;
        var policy = _filter.Policy;
        var up = _cache.Get(q);
        if (up is null)
        {
            up = await _upstream.QueryAsync(d.Upstream, ct).ConfigureAwait(false);
            if (up is null)
            {
                _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", "failed", q.Name, DnsType.Name(q.Type), Rule: "upstream-timeout"));
                return DnsMessage.ReplyTo(d.Query, DnsRcode.ServFail).Encode();
            }
            _cache.Put(q, up);
        }
        var f = _filter.Filter(d.Query, up);
        if (policy.Pins && d.Rule is not null && f.Pins.Count > 0)
        {
            var elements = _pins.Add(d.Rule, f.Pins);
            if (elements.Count > 0)
            {
                try
                {
                    await _sink.AddAsync(elements, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Without the pin the guest's connection would be refused: say so now rather than
                    // hand out an address that does not work.
                    _pins.KernelFailed(elements);
                    _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", "failed", q.Name, DnsType.Name(q.Type), Rule: "pin: " + ex.Message));
                    return DnsMessage.ReplyTo(d.Query, DnsRcode.ServFail).Encode();
                }
            }
        }
        return Finish(d, q, f, tcp, cached: false);
    }

    private static string Describe(DnsRecord r) =>
        DnsFilter.AddressOf(r)?.ToString() ?? DnsType.Name(r.Type) + (r.Type is DnsType.CNAME ? ":" + CnameTarget(r) : "");

    private static string CnameTarget(DnsRecord r)
    {
        var p = 0;
        try
        {
            return DnsMessage.ReadName(r.Data, ref p);
        }
        catch (DnsFormatException)
        {
            return "?";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _udp.Dispose();
        _tcp.Dispose();
        try
        {
            await Task.WhenAll(_udpLoop, _tcpLoop).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }
}
