using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Vmsan.Network.Dns;

namespace Vmsan.UnitTests.Network.Dns;

/// <summary>A resolver on loopback (UDP and TCP) answering from a table, logging every query it receives.</summary>
internal sealed class FakeResolver : IAsyncDisposable
{
    private readonly Socket _udp = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _tcp = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();

    public FakeResolver()
    {
        _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _tcp.Bind(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)_udp.LocalEndPoint!).Port));
        _tcp.Listen(8);
        _ = Task.Run(UdpAsync);
        _ = Task.Run(TcpAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;

    public ConcurrentQueue<string> Log { get; } = new();

    /// <summary>name (lower case) → records to answer.</summary>
    public ConcurrentDictionary<string, DnsRecord[]> Zone { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>When set, UDP answers are truncated (TC) so the client must retry over TCP.</summary>
    public bool TruncateUdp { get; set; }

    private byte[] Answer(byte[] wire, bool tcp)
    {
        var q = DnsMessage.Parse(wire);
        Log.Enqueue((tcp ? "tcp " : "udp ") + q.Questions[0].Name);
        var r = DnsMessage.ReplyTo(q, Zone.ContainsKey(q.Questions[0].Name) ? DnsRcode.NoError : DnsRcode.NxDomain);
        if (Zone.TryGetValue(q.Questions[0].Name, out var rs))
            r.Answers.AddRange(rs.Where(x => x.Type == q.Questions[0].Type || x.Type == DnsType.CNAME));
        if (!tcp && TruncateUdp)
        {
            r.Answers.Clear();
            r.Flags |= 0x0200;
        }
        return r.Encode();
    }

    private async Task UdpAsync()
    {
        var buf = new byte[4096];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var r = await _udp.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                await _udp.SendToAsync(Answer(buf[..r.ReceivedBytes], false), SocketFlags.None, r.RemoteEndPoint);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (DnsFormatException)
            {
            }
        }
    }

    private async Task TcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket c;
            try
            {
                c = await _tcp.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (c)
                {
                    var len = new byte[2];
                    await c.ReceiveAsync(len, SocketFlags.None);
                    var msg = new byte[(len[0] << 8) | len[1]];
                    var got = 0;
                    while (got < msg.Length)
                        got += await c.ReceiveAsync(msg.AsMemory(got), SocketFlags.None);
                    var a = Answer(msg, true);
                    await c.SendAsync(new byte[] { (byte)(a.Length >> 8), (byte)a.Length }.Concat(a).ToArray(), SocketFlags.None);
                }
            });
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Records what would go into the kernel's pin sets, and when.</summary>
internal sealed class RecordingSink : IPinSink
{
    public ConcurrentQueue<PinElement> Added { get; } = new();

    public Exception? Fail { get; set; }

    public Task AddAsync(IReadOnlyList<PinElement> elements, CancellationToken ct)
    {
        if (Fail is not null)
            throw Fail;
        foreach (var e in elements)
            Added.Enqueue(e);
        return Task.CompletedTask;
    }
}
