using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Vmsan.Network.Dns;
using Vmsan.Network.Logging;
using Vmsan.Network.Proxy;

namespace Vmsan.UnitTests.Network.Proxy;

/// <summary>
/// The proxy on loopback: SO_ORIGINAL_DST is replaced by a fixed destination (a local server
/// standing in for the pinned address), so the decision logic and the copying run for real.
/// </summary>
public sealed class PinningProxyTests : IAsyncLifetime
{
    private readonly Socket _server = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly PinTable _pins = new();
    private readonly NetworkLog _log = new(null);
    private DnsPolicy _policy = DnsPolicy.Domains("a.test", "*.b.test");
    private IPEndPoint _dst = null!;
    private PinningProxy _proxy = null!;

    public async ValueTask InitializeAsync()
    {
        _server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _server.Listen(16);
        _dst = (IPEndPoint)_server.LocalEndPoint!;
        _proxy = await PinningProxy.StartAsync(null, new IPEndPoint(IPAddress.Loopback, 0), _pins, () => _policy, _ => false, _log,
            _ => _dst, TestContext.Current.CancellationToken);
    }

    private async Task<Socket> ConnectAsync()
    {
        var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await c.ConnectAsync(_proxy.EndPoint);
        return c;
    }

    /// <summary>What the server received before the client went away, or null when the proxy never connected it.</summary>
    private async Task<byte[]?> ServerReceivedAsync(TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            using var s = await _server.AcceptAsync(cts.Token);
            using var ms = new MemoryStream();
            var buf = new byte[65536];
            int n;
            while ((n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0)
                ms.Write(buf, 0, n);
            return ms.ToArray();
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private static async Task<bool> IsResetAsync(Socket c)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var n = await c.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token);
            return n == 0 ? false : throw new InvalidOperationException("got data");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    [Fact]
    public async Task An_allowed_pinned_name_gets_through_with_its_hello_intact()
    {
        _pins.Add("a.test", [(_dst.Address, 300)]);
        var hello = await Hellos.RealAsync("A.test");
        using var c = await ConnectAsync();

        await c.SendAsync(hello, SocketFlags.None);
        c.Shutdown(SocketShutdown.Send);

        Assert.Equal(hello, await ServerReceivedAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData("c.test")]   // not allowed at all
    [InlineData("x.b.test")] // allowed, but its pins do not hold this address (fronting, shared IP)
    public async Task A_name_that_is_not_pinned_to_the_destination_is_reset(string sni)
    {
        _pins.Add("a.test", [(_dst.Address, 300)]);
        using var c = await ConnectAsync();
        var sw = Stopwatch.StartNew();

        await c.SendAsync(await Hellos.RealAsync(sni), SocketFlags.None);

        Assert.True(await IsResetAsync(c));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"refusal took {sw.Elapsed}");
        Assert.Null(await ServerReceivedAsync(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(1, _proxy.Refused);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: www.b.test\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", false)]
    public async Task A_plain_http_request_is_judged_by_its_host_header(string request, bool through)
    {
        _pins.Add("*.b.test", [(_dst.Address, 300)]);
        using var c = await ConnectAsync();

        await c.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None);
        c.Shutdown(SocketShutdown.Send);

        if (through)
            Assert.Equal(request, Encoding.ASCII.GetString((await ServerReceivedAsync(TimeSpan.FromSeconds(10)))!));
        else
            Assert.True(await IsResetAsync(c));
    }

    [Fact]
    public async Task A_connection_without_a_name_reaches_a_pinned_address_and_the_server_may_speak_first()
    {
        _pins.Add("a.test", [(_dst.Address, 300)]);
        using var c = await ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var s = await _server.AcceptAsync(cts.Token);

        await s.SendAsync("SSH-2.0-server\r\n"u8.ToArray(), SocketFlags.None);
        var buf = new byte[64];
        var n = await c.ReceiveAsync(buf, SocketFlags.None, cts.Token);
        await c.SendAsync("SSH-2.0-client\r\n"u8.ToArray(), SocketFlags.None);
        var m = await s.ReceiveAsync(buf.AsMemory(n), SocketFlags.None, cts.Token);

        Assert.Equal("SSH-2.0-server\r\nSSH-2.0-client\r\n", Encoding.ASCII.GetString(buf, 0, n + m));
    }

    [Fact]
    public async Task An_address_that_is_no_longer_pinned_is_reset_even_without_a_name()
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await c.ConnectAsync(_proxy.EndPoint, TestContext.Current.CancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return; // reset before connect() even returned
        }
        Assert.True(await IsResetAsync(c));
    }

    [Fact]
    public async Task A_live_policy_change_that_drops_the_name_refuses_new_connections()
    {
        _pins.Add("a.test", [(_dst.Address, 300)]);
        _policy = DnsPolicy.Domains("*.b.test");
        using var c = await ConnectAsync();

        await c.SendAsync(await Hellos.RealAsync("a.test"), SocketFlags.None);

        Assert.True(await IsResetAsync(c));
    }

    [Fact]
    public async Task Bulk_data_flows_both_ways_byte_exact()
    {
        _pins.Add("a.test", [(_dst.Address, 300)]);
        var payload = new byte[8 << 20];
        Random.Shared.NextBytes(payload);
        using var c = await ConnectAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var head = Encoding.ASCII.GetBytes("PUT /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
        await c.SendAsync(head, SocketFlags.None);
        using var s = await _server.AcceptAsync(cts.Token);
        // The server echoes everything back, then closes.
        var echo = Task.Run(async () =>
        {
            var buf = new byte[1 << 16];
            int n;
            while ((n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0)
                await s.SendAsync(buf.AsMemory(0, n), SocketFlags.None, cts.Token);
            s.Shutdown(SocketShutdown.Send);
        }, cts.Token);
        var send = Task.Run(async () =>
        {
            await c.SendAsync(payload, SocketFlags.None, cts.Token);
            c.Shutdown(SocketShutdown.Send);
        }, cts.Token);
        using var got = new MemoryStream();
        var rbuf = new byte[1 << 16];
        int r;
        while ((r = await c.ReceiveAsync(rbuf, SocketFlags.None, cts.Token)) > 0)
            got.Write(rbuf, 0, r);
        await Task.WhenAll(echo, send);

        Assert.Equal([.. head, .. payload], got.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _server.Dispose();
        _log.Dispose();
    }
}
