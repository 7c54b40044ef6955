using System.Net;
using System.Net.Sockets;
using Vmsan.Network.Dns;
using Vmsan.Network.Logging;

namespace Vmsan.UnitTests.Network.Dns;

public sealed class DnsFilterServerTests : IAsyncLifetime
{
    private readonly FakeResolver _upstream = new();
    private readonly RecordingSink _sink = new();
    private readonly PinTable _pins = new();
    private readonly string _logPath = Path.Combine(Path.GetTempPath(), "vmsan-dns-" + Guid.NewGuid().ToString("N")[..8] + ".log");
    private NetworkLog _log = null!;
    private DnsFilter _filter = null!;
    private DnsFilterServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _upstream.Zone["api.allowed.test"] = [DnsWire.A("api.allowed.test", "198.51.100.10", 5)];
        _upstream.Zone["rebind.allowed.test"] = [DnsWire.A("rebind.allowed.test", "10.0.0.1"), DnsWire.A("rebind.allowed.test", "198.51.100.11")];
        _upstream.Zone["blocked.test"] = [DnsWire.A("blocked.test", "198.51.100.66")];
        _log = new NetworkLog(_logPath);
        _filter = new DnsFilter(DnsPolicy.Domains("api.allowed.test", "*.allowed.test"), a => a.GetAddressBytes()[0] == 10);
        _server = await DnsFilterServer.StartAsync(null, new IPEndPoint(IPAddress.Loopback, 0), _filter, new DnsUpstream(_upstream.EndPoint),
            _pins, _sink, _log, TestContext.Current.CancellationToken);
    }

    private async Task<DnsMessage> UdpAsync(DnsMessage q)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await s.ConnectAsync(_server.UdpEndPoint, cts.Token);
        await s.SendAsync(q.Encode(), SocketFlags.None, cts.Token);
        var buf = new byte[65535];
        var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
        return DnsMessage.Parse(buf.AsSpan(0, n));
    }

    private async Task<DnsMessage> TcpAsync(DnsMessage q)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await s.ConnectAsync(_server.TcpEndPoint, cts.Token);
        var w = q.Encode();
        await s.SendAsync(new byte[] { (byte)(w.Length >> 8), (byte)w.Length }.Concat(w).ToArray(), SocketFlags.None, cts.Token);
        var len = new byte[2];
        await s.ReceiveAsync(len, SocketFlags.None, cts.Token);
        var msg = new byte[(len[0] << 8) | len[1]];
        var got = 0;
        while (got < msg.Length)
            got += await s.ReceiveAsync(msg.AsMemory(got), SocketFlags.None, cts.Token);
        return DnsMessage.Parse(msg);
    }

    [Fact]
    public async Task An_allowed_name_is_answered_and_pinned_before_the_guest_sees_it()
    {
        var r = await UdpAsync(DnsWire.Query("API.Allowed.Test", id: 4242));

        Assert.Equal(4242, r.Id);
        Assert.Equal("API.Allowed.Test", r.Questions[0].Name);
        Assert.Equal(IPAddress.Parse("198.51.100.10"), DnsFilter.AddressOf(r.Answers.Single()));
        var pin = Assert.Single(_sink.Added);
        Assert.Equal(IPAddress.Parse("198.51.100.10"), pin.Address);
        Assert.Equal(PinTable.Floor, pin.Timeout); // TTL 5 s → the floor
        Assert.True(_pins.Allows("api.allowed.test", IPAddress.Parse("198.51.100.10")));
    }

    [Fact]
    public async Task A_name_outside_the_allowlist_never_reaches_the_upstream()
    {
        var label = "x" + Guid.NewGuid().ToString("N");
        var r = await UdpAsync(DnsWire.Query($"{label}.blocked.test", DnsType.TXT));
        var t = await TcpAsync(DnsWire.Query($"{label}.blocked.test"));

        Assert.Equal(DnsRcode.NxDomain, r.Rcode);
        Assert.Equal(DnsRcode.NxDomain, t.Rcode);
        Assert.DoesNotContain(_upstream.Log, l => l.Contains(label, StringComparison.Ordinal));
        Assert.Empty(_upstream.Log);
        _log.Dispose();
        var events = NetworkLog.Read(_logPath);
        Assert.Contains(events, e => e.Kind == "dns" && e.Action == "refused" && e.Name == $"{label}.blocked.test" && e.Rule == "not-allowed");
    }

    [Fact]
    public async Task Rebinding_answers_are_dropped_over_tcp_too()
    {
        var r = await TcpAsync(DnsWire.Query("rebind.allowed.test"));

        Assert.Equal([IPAddress.Parse("198.51.100.11")], r.Answers.Select(DnsFilter.AddressOf));
        _log.Dispose();
        Assert.Contains(NetworkLog.Read(_logPath), e => e.Action == "dropped" && e.Rule == "rebinding" && e.Answer!.Contains("10.0.0.1"));
    }

    [Fact]
    public async Task A_truncated_upstream_answer_is_fetched_again_over_tcp()
    {
        _upstream.TruncateUdp = true;

        var r = await UdpAsync(DnsWire.Query("api.allowed.test"));

        Assert.Single(r.Answers);
        Assert.Contains("tcp api.allowed.test", _upstream.Log);
    }

    [Fact]
    public async Task When_the_pin_cannot_be_set_the_guest_gets_servfail_not_an_address()
    {
        _sink.Fail = new InvalidOperationException("nft failed");

        var r = await UdpAsync(DnsWire.Query("api.allowed.test"));

        Assert.Equal(DnsRcode.ServFail, r.Rcode);
        Assert.Empty(r.Answers);
    }

    [Fact]
    public async Task A_live_policy_change_applies_to_the_next_query()
    {
        Assert.Single((await UdpAsync(DnsWire.Query("api.allowed.test"))).Answers);

        _filter.Policy = DnsPolicy.DenyAll;

        Assert.Equal(DnsRcode.NxDomain, (await UdpAsync(DnsWire.Query("api.allowed.test"))).Rcode);
    }

    [Fact]
    public async Task A_repeated_query_is_answered_from_the_cache_and_still_filtered()
    {
        Assert.Single((await UdpAsync(DnsWire.Query("api.allowed.test"))).Answers);
        Assert.Single((await UdpAsync(DnsWire.Query("API.allowed.test", id: 7))).Answers);
        Assert.Single(_upstream.Log);

        _filter.Policy = DnsPolicy.Domains("other.test");

        Assert.Equal(DnsRcode.NxDomain, (await UdpAsync(DnsWire.Query("api.allowed.test"))).Rcode);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _upstream.DisposeAsync();
        _log.Dispose();
        File.Delete(_logPath);
    }
}

public sealed class DnsCacheTests
{
    [Fact]
    public void An_answer_is_kept_for_its_ttl_with_the_ttl_counting_down()
    {
        var now = new DateTime(2026, 12, 2, 21, 0, 0, DateTimeKind.Utc);
        var cache = new DnsCache(() => now);
        var q = DnsWire.Query("A.test");
        cache.Put(q.Questions[0], DnsWire.Answer(q, DnsWire.A("a.test", "198.51.100.1", 30)));

        now += TimeSpan.FromSeconds(10);
        var hit = cache.Get(DnsWire.Query("a.TEST").Questions[0]);
        Assert.Equal(20u, hit!.Answers[0].Ttl);

        now += TimeSpan.FromSeconds(21);
        Assert.Null(cache.Get(q.Questions[0]));
    }

    [Fact]
    public void Failures_and_truncated_answers_are_not_kept()
    {
        var cache = new DnsCache();
        var q = DnsWire.Query("a.test");
        cache.Put(q.Questions[0], DnsMessage.ReplyTo(q, DnsRcode.ServFail));
        var tc = DnsWire.Answer(q);
        tc.Flags |= 0x0200;
        cache.Put(q.Questions[0], tc);
        Assert.Null(cache.Get(q.Questions[0]));
    }
}
