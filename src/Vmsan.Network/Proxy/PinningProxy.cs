using System.Net;
using System.Net.Sockets;
using Vmsan.Network.Dns;
using Vmsan.Network.Logging;

namespace Vmsan.Network.Proxy;

/// <summary>
/// The SNI/Host pinning proxy. nftables redirects the guest's TCP to pinned addresses (any port)
/// here; each connection is let through only when the name it carries — the TLS ClientHello's SNI
/// or the HTTP Host header — is allowed by the policy AND that pattern's pins hold the original
/// destination. So an allowed domain's shared IP does not open other names, and fronting fails.
/// Connections that carry no name (SSH, raw TCP; the client stays silent or sends something else)
/// reach the pinned address: that is the limit of name-based pinning.
/// Refusals are a TCP reset, at once.
/// </summary>
public sealed class PinningProxy : IAsyncDisposable
{
    public const int BufferSize = 256 * 1024;
    private const int MaxConnections = 1024;
    private const int MaxPeek = ClientHello.MaxHandshake + 5 * 8;

    /// <summary>How long a silent client may wait before it is taken as a protocol where the server speaks first.</summary>
    public static readonly TimeSpan SilenceIsNameless = TimeSpan.FromMilliseconds(700);
    private static readonly TimeSpan HelloDeadline = TimeSpan.FromSeconds(10);

    private readonly Socket _listener;
    private readonly PinTable _pins;
    private readonly Func<DnsPolicy> _policy;
    private readonly Func<IPAddress, bool> _alwaysDenied;
    private readonly Func<IPEndPoint, CancellationToken, Task<Socket>> _connect;
    private readonly Func<Socket, IPEndPoint?> _originalDst;
    private readonly NetworkLog _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _slots = new(MaxConnections);
    private readonly Task _loop;

    private PinningProxy(Socket listener, PinTable pins, Func<DnsPolicy> policy, Func<IPAddress, bool> alwaysDenied,
        Func<IPEndPoint, CancellationToken, Task<Socket>> connect, Func<Socket, IPEndPoint?> originalDst, NetworkLog log)
    {
        _listener = listener;
        _pins = pins;
        _policy = policy;
        _alwaysDenied = alwaysDenied;
        _connect = connect;
        _originalDst = originalDst;
        _log = log;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Connections refused so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    private long _refused;

    /// <param name="netns">Where to listen and where upstream sockets are created (null: this process's namespace).</param>
    /// <param name="originalDst">Tests may replace SO_ORIGINAL_DST.</param>
    public static async Task<PinningProxy> StartAsync(string? netns, IPEndPoint listen, PinTable pins, Func<DnsPolicy> policy,
        Func<IPAddress, bool> alwaysDenied, NetworkLog log, Func<Socket, IPEndPoint?>? originalDst = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(pins);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(alwaysDenied);
        ArgumentNullException.ThrowIfNull(log);
        Socket Listen()
        {
            var s = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                s.Bind(listen);
                s.Listen(512);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        ct.ThrowIfCancellationRequested();
        var listener = netns is null ? Listen() : await NetnsThread.RunAsync(netns, Listen).ConfigureAwait(false);
        async Task<Socket> Connect(IPEndPoint dst, CancellationToken token)
        {
            // Created in the VM's namespace: the connection leaves like the guest's own traffic would.
            var s = netns is null
                ? new Socket(dst.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : await NamespaceSocket.CreateAsync(netns, dst.AddressFamily, SocketType.Stream, ProtocolType.Tcp, token).ConfigureAwait(false);
            try
            {
                await s.ConnectAsync(dst, token).ConfigureAwait(false);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        return new PinningProxy(listener, pins, policy, alwaysDenied, Connect, originalDst ?? OriginalDestination.Of, log);
    }

    private async Task AcceptLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket c;
            try
            {
                c = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (!_slots.Wait(0))
            {
                Reset(c);
                continue;
            }
            _ = Task.Run(async () =>
            {
                try
                {
                    await HandleAsync(c, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
                {
                }
                finally
                {
                    c.Dispose();
                    _slots.Release();
                }
            }, CancellationToken.None);
        }
    }

    private async Task HandleAsync(Socket guest, CancellationToken ct)
    {
        var dst = _originalDst(guest);
        if (dst is null)
        {
            Refuse(guest, null, null, "not-redirected");
            return;
        }
        if (_alwaysDenied(dst.Address))
        {
            Refuse(guest, dst, null, "always-denied");
            return;
        }
        if (_pins.AnyRuleFor(dst.Address) is null)
        {
            Refuse(guest, dst, null, "not-pinned");
            return;
        }
        guest.NoDelay = true;
        var buf = new byte[MaxPeek];
        var (got, verdict) = await PeekAsync(guest, buf, ct).ConfigureAwait(false);
        string? rule;
        if (verdict.Status == PeekStatus.Invalid)
        {
            Refuse(guest, dst, null, verdict.Why ?? "invalid");
            return;
        }
        if (verdict.Status == PeekStatus.Complete)
        {
            if (verdict.Name is null)
            {
                Refuse(guest, dst, null, "no-server-name");
                return;
            }
            if (_policy().RuleFor(verdict.Name) is null)
            {
                Refuse(guest, dst, verdict.Name, "name-not-allowed");
                return;
            }
            if (!_pins.Allows(verdict.Name, dst.Address))
            {
                Refuse(guest, dst, verdict.Name, "name-not-pinned-to-address");
                return;
            }
            rule = verdict.Name;
        }
        else
        {
            rule = null; // nameless: the pinned address on any port
        }
        Socket upstream;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(30));
            upstream = await _connect(dst, cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Refuse(guest, dst, rule, "upstream: " + (ex is SocketException se ? se.SocketErrorCode.ToString() : "timeout"), count: false);
            return;
        }
        using (upstream)
        {
            upstream.NoDelay = true;
            if (got > 0)
                await SendAllAsync(upstream, buf.AsMemory(0, got), ct).ConfigureAwait(false);
            await Task.WhenAll(PumpAsync(guest, upstream, buf, ct), PumpAsync(upstream, guest, new byte[BufferSize], ct)).ConfigureAwait(false);
        }
    }

    /// <summary>Reads until the first bytes say what the connection is (or the client stays silent).</summary>
    private static async Task<(int Got, PeekResult Verdict)> PeekAsync(Socket guest, byte[] buf, CancellationToken ct)
    {
        var got = 0;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(HelloDeadline);
        while (true)
        {
            int n;
            try
            {
                if (got == 0)
                {
                    using var silence = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                    silence.CancelAfter(SilenceIsNameless);
                    n = await guest.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, silence.Token).ConfigureAwait(false);
                }
                else
                {
                    n = await guest.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // Silent from the start: a protocol where the server speaks first. Silent halfway
                // through a ClientHello or request head: refused (the name never came).
                return got == 0 ? (0, new PeekResult(PeekStatus.NotThisProtocol, null)) : (got, new PeekResult(PeekStatus.Invalid, null, "incomplete hello"));
            }
            if (n == 0)
                return got == 0 ? (0, new PeekResult(PeekStatus.NotThisProtocol, null)) : (got, new PeekResult(PeekStatus.Invalid, null, "closed before its name"));
            got += n;
            var data = buf.AsSpan(0, got);
            var tls = ClientHello.Parse(data);
            if (tls.Status != PeekStatus.NotThisProtocol)
            {
                if (tls.Status != PeekStatus.NeedMore)
                    return (got, tls);
            }
            else
            {
                var http = HttpHost.Parse(data);
                if (http.Status != PeekStatus.NeedMore)
                    return (got, http);
            }
            if (got == buf.Length)
                return (got, new PeekResult(PeekStatus.Invalid, null, "hello too long"));
        }
    }

    private static async Task PumpAsync(Socket from, Socket to, byte[] buf, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buf, SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                    break;
                await SendAllAsync(to, buf.AsMemory(0, n), ct).ConfigureAwait(false);
            }
            // Half-close: the other side may still be sending.
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // One side broke: break the other too, so neither hangs.
            Reset(to);
            Reset(from);
        }
    }

    private static async Task SendAllAsync(Socket s, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (data.Length > 0)
        {
            var n = await s.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }

    private void Refuse(Socket guest, IPEndPoint? dst, string? name, string rule, bool count = true)
    {
        if (count)
            Interlocked.Increment(ref _refused);
        _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "proxy", "refused", Name: name, Dst: dst?.ToString(), Rule: rule));
        Reset(guest);
    }

    /// <summary>Closes with a TCP reset (SO_LINGER 0), so the guest learns at once.</summary>
    private static void Reset(Socket s)
    {
        try
        {
            s.LingerState = new LingerOption(true, 0);
            s.Close();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
