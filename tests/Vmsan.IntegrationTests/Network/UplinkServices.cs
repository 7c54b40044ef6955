using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Vmsan.Network;
using Vmsan.Network.Dns;

namespace Vmsan.IntegrationTests.Network;

/// <summary>
/// The "internet" of the network tests, served by this test process from sockets created inside
/// the world's uplink namespace: web servers (HTTP and HTTPS with a self-signed certificate made
/// here, one address serving two names), the resolver vmsan forwards to (logging every query it
/// receives), a rogue resolver with DoT and a DoH-like HTTPS endpoint, UDP echo (QUIC stand-in),
/// and a server that speaks first (SSH stand-in).
/// </summary>
public sealed class UplinkServices : IAsyncDisposable
{
    public const string Resolver = "198.18.0.53";
    public const string Rogue = "198.18.0.54";
    public const string SharedWeb = "198.18.1.10";   // a.test and shared.test
    public const string BWeb = "198.18.1.11";        // b.test
    public const string WildSub = "198.18.1.12";     // x.w.test
    public const string WildApex = "198.18.1.13";    // w.test
    public const string RebindPublic = "198.18.1.14"; // the public half of rebind.test
    public const string RawIp = "198.18.1.20";       // no name at all
    public const string Evil = "198.18.1.30";        // evil.test, and whatever the rogue resolver says
    public const string CidrOk = "198.18.2.5";
    public const string CidrDenied = "198.18.2.7";

    public static readonly string[] Addresses = [Resolver, Rogue, SharedWeb, BWeb, WildSub, WildApex, RebindPublic, RawIp, Evil, CidrOk, CidrDenied];

    private readonly string _netns;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private readonly X509Certificate2 _cert;

    private UplinkServices(string netns)
    {
        _netns = netns;
        using var key = RSA.Create(2048);
        var req = new CertificateRequest("CN=vmsan-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var n in new[] { "a.test", "shared.test", "b.test", "x.w.test", "w.test", "evil.test", "dns.rogue.test" })
            san.AddDnsName(n);
        req.CertificateExtensions.Add(san.Build());
        using var c = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _cert = X509CertificateLoader.LoadPkcs12(c.Export(X509ContentType.Pfx), null);
    }

    /// <summary>Every query name the real resolver received, in order.</summary>
    public ConcurrentQueue<string> ResolverLog { get; } = new();

    public ConcurrentQueue<string> RogueLog { get; } = new();

    /// <summary>Adds the addresses to the uplink and starts every server. <paramref name="hostNs"/> gets a listener on its own address.</summary>
    public static async Task<UplinkServices> StartAsync(string uplinkNs, string hostNs, string hostAddress)
    {
        var u = new UplinkServices(uplinkNs);
        var cmds = string.Join('\n', Addresses.Select(a => $"ip -n {uplinkNs} addr add {a}/32 dev lo"));
        await Infrastructure.Sh.Check("set -e\n" + cmds);
        var zone = Zone();
        await u.DnsAsync(Resolver, q => zone.TryGetValue(q.Name.ToLowerInvariant(), out var rs) ? rs.Where(r => r.Type == q.Type).ToArray() : null, u.ResolverLog);
        await u.DnsAsync(Rogue, q => q.Type == DnsType.A ? [A(q.Name, Evil, 60)] : [], u.RogueLog);
        foreach (var addr in new[] { SharedWeb, BWeb, WildSub, WildApex, RebindPublic, RawIp, Evil, CidrOk, CidrDenied })
            foreach (var port in new[] { 80, 443, 8443 })
                await u.WebAsync(uplinkNs, addr, port);
        await u.WebAsync(uplinkNs, Rogue, 443); // DoH-like
        await u.WebAsync(uplinkNs, Rogue, 853); // DoT
        await u.WebAsync(hostNs, hostAddress, 8022);
        await u.BannerAsync(SharedWeb, 2222);
        foreach (var (addr, port) in new[] { (SharedWeb, 443), (CidrOk, 5353), (Rogue, 853) })
            await u.UdpEchoAsync(addr, port);
        return u;
    }

    private static Dictionary<string, DnsRecord[]> Zone()
    {
        var https = new DnsMessage.ByteWriter();
        https.U16(1);
        https.Name("");
        https.U16(1); // alpn h2
        https.U16(3);
        https.Bytes([2, (byte)'h', (byte)'2']);
        https.U16(5); // ech
        https.U16(4);
        https.Bytes([0xEC, 0xEC, 0xEC, 0xEC]);
        return new()
        {
            ["a.test"] = [A("a.test", SharedWeb, 5), new DnsRecord("a.test", DnsType.HTTPS, 1, 300, https.ToArray())],
            ["shared.test"] = [A("shared.test", SharedWeb)],
            ["b.test"] = [A("b.test", BWeb)],
            ["x.w.test"] = [A("x.w.test", WildSub)],
            ["w.test"] = [A("w.test", WildApex)],
            ["rebind.test"] = [A("rebind.test", "10.0.0.5"), A("rebind.test", "169.254.169.254"), A("rebind.test", RebindPublic)],
            ["evil.test"] = [A("evil.test", Evil)],
        };
    }

    private static DnsRecord A(string name, string ip, uint ttl = 300) => new(name, DnsType.A, 1, ttl, IPAddress.Parse(ip).GetAddressBytes());

    private async Task<Socket> SocketAsync(string netns, SocketType type, ProtocolType proto)
    {
        var s = await NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, type, proto);
        lock (_sockets)
            _sockets.Add(s);
        return s;
    }

    private async Task DnsAsync(string address, Func<DnsQuestion, DnsRecord[]?> answer, ConcurrentQueue<string> log)
    {
        var ep = new IPEndPoint(IPAddress.Parse(address), 53);
        byte[] Reply(byte[] wire)
        {
            var q = DnsMessage.Parse(wire);
            log.Enqueue(q.Questions[0].Name);
            var rs = answer(q.Questions[0]);
            var r = DnsMessage.ReplyTo(q, rs is null ? DnsRcode.NxDomain : DnsRcode.NoError);
            if (rs is not null)
                r.Answers.AddRange(rs);
            return r.Encode();
        }

        var udp = await SocketAsync(_netns, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(ep);
        _ = Task.Run(async () =>
        {
            var buf = new byte[4096];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    await udp.SendToAsync(Reply(buf[..r.ReceivedBytes]), SocketFlags.None, r.RemoteEndPoint);
                }
                catch (DnsFormatException)
                {
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        });
        var tcp = await SocketAsync(_netns, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(ep);
        tcp.Listen(16);
        Serve(tcp, async c =>
        {
            var len = new byte[2];
            if (await c.ReceiveAsync(len, SocketFlags.None) < 2)
                return;
            var msg = new byte[(len[0] << 8) | len[1]];
            var got = 0;
            while (got < msg.Length)
                got += await c.ReceiveAsync(msg.AsMemory(got), SocketFlags.None);
            var a = Reply(msg);
            await c.SendAsync(new byte[] { (byte)(a.Length >> 8), (byte)a.Length }.Concat(a).ToArray(), SocketFlags.None);
        });
    }

    /// <summary>HTTP and HTTPS on one port (told apart by the first byte); answers "host=&lt;Host header&gt; at=&lt;address&gt;".</summary>
    private async Task WebAsync(string netns, string address, int port)
    {
        var s = await SocketAsync(netns, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Parse(address), port));
        s.Listen(64);
        Serve(s, async c =>
        {
            var first = new byte[1];
            if (await c.ReceiveAsync(first, SocketFlags.Peek) < 1)
                return;
            Stream stream = new NetworkStream(c, ownsSocket: false);
            if (first[0] == 0x16)
            {
                var ssl = new SslStream(stream);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _cert });
                stream = ssl;
            }
            var head = new StringBuilder();
            var b = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && head.Length < 8192 && await stream.ReadAsync(b) == 1)
                head.Append((char)b[0]);
            var host = head.ToString().Split("\r\n").FirstOrDefault(l => l.StartsWith("Host:", StringComparison.OrdinalIgnoreCase))?[5..].Trim() ?? "";
            var body = Encoding.ASCII.GetBytes($"host={host} at={address}\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(body);
            await stream.FlushAsync();
        });
    }

    private async Task BannerAsync(string address, int port)
    {
        var s = await SocketAsync(_netns, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Parse(address), port));
        s.Listen(16);
        Serve(s, async c =>
        {
            await c.SendAsync("SSH-2.0-vmsan-test\r\n"u8.ToArray(), SocketFlags.None);
            await c.ReceiveAsync(new byte[256], SocketFlags.None);
        });
    }

    private async Task UdpEchoAsync(string address, int port)
    {
        var s = await SocketAsync(_netns, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Parse(address), port));
        _ = Task.Run(async () =>
        {
            var buf = new byte[2048];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var r = await s.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    await s.SendToAsync(buf.AsMemory(0, r.ReceivedBytes), SocketFlags.None, r.RemoteEndPoint);
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        });
    }

    private void Serve(Socket listener, Func<Socket, Task> handle)
    {
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket c;
                try
                {
                    c = await listener.AcceptAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (c)
                    {
                        try
                        {
                            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                            await handle(c).WaitAsync(cts.Token);
                        }
                        catch (Exception)
                        {
                            // Probes hang up halfway on purpose; that is not the server's failure.
                        }
                    }
                });
            }
        });
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        lock (_sockets)
            foreach (var s in _sockets)
                s.Dispose();
        _cert.Dispose();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
