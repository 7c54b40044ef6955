using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using CsCheck;
using Vmsan.Core.Errors;
using Vmsan.Core.Processes;
using Vmsan.Network;
using Vmsan.Network.Logging;

namespace Vmsan.UnitTests.Network.Logging;

public sealed class NflogTests
{
    [Fact]
    public void A_logged_tcp_syn_reads_as_its_destination_protocol_and_rule()
    {
        var ip = Ipv4(IPAddress.Parse("172.30.0.2"), IPAddress.Parse("198.18.0.1"), 6, Ports(40000, 7001));
        var items = NflogWire.Parse(Packet(7, "refused_policy ", ip));

        var p = Assert.Single(items).Packet!;
        Assert.Equal("refused_policy", p.Prefix);
        Assert.Equal("198.18.0.1:7001", p.Summary!.DestinationText);
        Assert.Equal("tcp", p.Summary.Protocol);
        Assert.Equal(40000, p.Summary.SourcePort);
        var e = VmNetworkServices.RefusalEvent(p);
        Assert.Equal(("refused", "refused", "tcp", "198.18.0.1:7001", "refused_policy"), (e.Kind, e.Action, e.Type, e.Dst, e.Rule));
    }

    [Fact]
    public void Ipv6_udp_behind_an_extension_header_and_icmp_read_right()
    {
        var hopByHop = new byte[8];
        hopByHop[0] = 17; // next: UDP
        var v6 = Ipv6(IPAddress.Parse("fd00::2"), IPAddress.Parse("2001:db8::1"), 0, [.. hopByHop, .. Ports(5353, 443)]);
        var icmp = Ipv4(IPAddress.Parse("172.30.0.2"), IPAddress.Parse("169.254.169.254"), 1, [8, 0, 0, 0]);

        var items = NflogWire.Parse([.. Packet(1, "refused_ipv6 ", v6), .. Packet(2, "refused_always_denied ", icmp)]);

        Assert.Equal(2, items.Count);
        Assert.Equal("[2001:db8::1]:443", items[0].Packet!.Summary!.DestinationText);
        Assert.Equal("udp", items[0].Packet!.Summary!.Protocol);
        var e = VmNetworkServices.RefusalEvent(items[1].Packet!);
        Assert.Equal("169.254.169.254", e.Dst);
        Assert.Equal("icmp type 8 code 0", e.Type);
        Assert.Equal("refused_always_denied", e.Rule);
    }

    [Fact]
    public void A_later_fragment_gives_no_ports_and_acks_and_errors_are_told_apart()
    {
        var frag = Ipv4(IPAddress.Parse("172.30.0.2"), IPAddress.Parse("198.18.0.1"), 17, Ports(1, 2));
        frag[6] = 0x00;
        frag[7] = 0x10; // offset 16 * 8 bytes
        var p = Assert.Single(NflogWire.Parse(Packet(3, "refused_udp", frag))).Packet!;
        Assert.Null(p.Summary!.DestinationPort);
        Assert.Equal("198.18.0.1", p.Summary.DestinationText);

        var items = NflogWire.Parse([.. NetlinkError(5, 0), .. NetlinkError(6, -1)]);
        Assert.Equal([(NflogItemKind.Ack, 5u, 0), (NflogItemKind.Error, 6u, 1)], items.Select(i => (i.Kind, i.Sequence, i.Error)));
    }

    [Fact]
    public void Config_requests_have_the_layout_the_kernel_reads()
    {
        var bind = NflogWire.BindRequest(9, 7);
        Assert.Equal(bind.Length, (int)MemoryMarshal.Read<uint>(bind));
        Assert.Equal(NflogWire.ConfigMessage, MemoryMarshal.Read<ushort>(bind.AsSpan(4)));
        Assert.Equal(9u, MemoryMarshal.Read<uint>(bind.AsSpan(8)));
        Assert.Equal(7, BinaryPrimitives.ReadUInt16BigEndian(bind.AsSpan(18)));
        Assert.Equal(new byte[] { 5, 0, 1, 0, 1 }, bind.AsSpan(20, 5).ToArray()); // nla_len 5, NFULA_CFG_CMD, BIND
        var mode = NflogWire.ModeRequest(10, 7, 128);
        Assert.Equal(0, mode.Length % 4);
        Assert.Equal(128u, BinaryPrimitives.ReadUInt32BigEndian(mode.AsSpan(24)));
        Assert.Equal(2, mode[28]); // NFULNL_COPY_PACKET
    }

    [Fact]
    public void Any_packet_round_trips_through_the_wire_format() =>
        Gen.Select(Gen.Bool, Gen.Byte.Array[16], Gen.Byte.Array[16], Gen.Bool.Select(t => t ? 6 : 17), Gen.Int[1, 65535], Gen.Int[1, 65535], Gen.String[Gen.Char['a', 'z'], 1, 60])
            .Sample(t =>
            {
                var (v6, a, b, proto, sport, dport, prefix) = t;
                var src = new IPAddress(v6 ? a : a[..4]);
                var dst = new IPAddress(v6 ? b : b[..4]);
                var ip = v6 ? Ipv6(src, dst, proto, Ports(sport, dport)) : Ipv4(src, dst, proto, Ports(sport, dport));

                var p = Assert.Single(NflogWire.Parse(Packet(1, prefix, ip))).Packet!;

                Assert.Equal(prefix, p.Prefix);
                Assert.Equal((src, dst, proto == 6 ? "tcp" : "udp", sport, dport),
                    (p.Summary!.Source, p.Summary.Destination, p.Summary.Protocol, p.Summary.SourcePort!.Value, p.Summary.DestinationPort!.Value));
            }, iter: 5000);

    [Fact]
    public void Mutated_and_cut_messages_never_throw_and_prefixes_stay_printable()
    {
        var seed = Packet(4, "refused_policy ", Ipv6(IPAddress.Parse("fd00::2"), IPAddress.Parse("2001:db8::1"), 6, Ports(1, 443)));
        Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Byte).Array[1, 10].Select(Gen.Int[0, seed.Length], (e, n) => (e, n)).Sample(t =>
        {
            var (edits, len) = t;
            var b = (byte[])seed.Clone();
            foreach (var (i, v) in edits)
                b[i] = v;
            foreach (var item in NflogWire.Parse(b.AsSpan(0, len)))
                if (item.Packet?.Prefix is { } prefix)
                    Assert.Matches("^[\\x20-\\x7e]+$", prefix);
        }, iter: 20000);
        Gen.Byte.Array[0, 300].Sample(b => NflogWire.Parse(b), iter: 20000);
        Gen.Byte.Array[0, 120].Sample(b => PacketSummary.Parse(b), iter: 20000);
    }

    [Fact(Timeout = 60_000)]
    public async Task Packets_an_nft_rule_logs_to_the_group_are_read_in_that_namespace_only()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var world = await NetnsWorld.CreateAsync();
        var other = await world.AddNetnsAsync($"vt-{world.Id}-oth");
        const string rules = """
            table inet t {
              chain out {
                type filter hook output priority 0; policy accept;
                ip daddr 127.0.0.1 tcp dport 9 counter log prefix "refused_policy " group 7 reject with tcp reset
                ip6 daddr ::1 udp dport 9 counter log prefix "refused_udp " group 7 reject with icmpx admin-prohibited
              }
            }
            """;
        foreach (var ns in (string[])[world.HostNs, other])
        {
            var r = await CommandRunner.Instance.RunAsync("ip", ["netns", "exec", ns, "nft", "-f", "-"], rules, ct);
            Assert.True(r.Ok, r.Stderr);
        }
        var seen = new ConcurrentQueue<NflogPacket>();
        var errors = new ConcurrentQueue<string>();
        using var reader = await NflogReader.StartAsync(world.HostNs, 7, seen.Enqueue, errors.Enqueue);

        // The same refusals in a namespace the reader is not in must not show up.
        using (var s = await NamespaceSocket.CreateAsync(other, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp, ct))
            await Assert.ThrowsAsync<SocketException>(async () => await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, 9), ct));
        using (var s = await NamespaceSocket.CreateAsync(world.HostNs, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp, ct))
            await Assert.ThrowsAsync<SocketException>(async () => await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, 9), ct));
        using (var u = await NamespaceSocket.CreateAsync(world.HostNs, AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp, ct))
        {
            // An unconnected UDP socket hears of the ICMP error later, if at all: only the log matters here.
            try
            {
                u.SendTo(Encoding.ASCII.GetBytes("x"), new IPEndPoint(IPAddress.IPv6Loopback, 9));
            }
            catch (SocketException)
            {
            }
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (seen.Count < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(20, ct);
        await Task.Delay(300, ct); // anything from the other namespace would have arrived by now
        var got = seen.Select(p => (p.Prefix, p.Summary?.Protocol, p.Summary?.DestinationText)).ToList();
        Assert.Equal([("refused_policy", "tcp", "127.0.0.1:9"), ("refused_udp", "udp", "[::1]:9")], got);
        Assert.Empty(errors);

        // The group is this reader's in its namespace: a second one is refused with a typed error.
        var ex = await Assert.ThrowsAsync<VmsanException>(() => NflogReader.StartAsync(world.HostNs, 7, _ => { }, _ => { }));
        Assert.Contains("group 7", ex.Message, StringComparison.Ordinal);
    }

    // --- wire builders (what the kernel sends) ---

    private static byte[] Ports(int source, int destination)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)source);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)destination);
        return b;
    }

    private static byte[] Ipv4(IPAddress src, IPAddress dst, int proto, byte[] l4)
    {
        var h = new byte[20 + l4.Length];
        h[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)h.Length);
        h[6] = 0x40; // DF
        h[8] = 64;
        h[9] = (byte)proto;
        src.GetAddressBytes().CopyTo(h, 12);
        dst.GetAddressBytes().CopyTo(h, 16);
        l4.CopyTo(h, 20);
        return h;
    }

    private static byte[] Ipv6(IPAddress src, IPAddress dst, int next, byte[] rest)
    {
        var h = new byte[40 + rest.Length];
        h[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)rest.Length);
        h[6] = (byte)next;
        h[7] = 64;
        src.GetAddressBytes().CopyTo(h, 8);
        dst.GetAddressBytes().CopyTo(h, 24);
        rest.CopyTo(h, 40);
        return h;
    }

    private static byte[] Attr(ushort type, byte[] value)
    {
        var b = new byte[(4 + value.Length + 3) & ~3];
        MemoryMarshal.Write(b, (ushort)(4 + value.Length));
        MemoryMarshal.Write(b.AsSpan(2), type);
        value.CopyTo(b, 4);
        return b;
    }

    private static byte[] Packet(uint seq, string prefix, byte[] ip)
    {
        byte[] attrs =
        [
            .. Attr(NflogWire.AttrPacketHeader, [0x08, 0x00, 2, 0]),
            .. Attr(NflogWire.AttrPrefix, [.. Encoding.ASCII.GetBytes(prefix), 0]),
            .. Attr(NflogWire.AttrPayload, ip),
        ];
        var m = new byte[NflogWire.NetlinkHeaderLength + 4 + attrs.Length];
        MemoryMarshal.Write(m, (uint)m.Length);
        MemoryMarshal.Write(m.AsSpan(4), NflogWire.PacketMessage);
        MemoryMarshal.Write(m.AsSpan(8), seq);
        m[16] = ip[0] >> 4 == 6 ? (byte)10 : (byte)2;
        attrs.CopyTo(m, 20);
        return m;
    }

    private static byte[] NetlinkError(uint seq, int error)
    {
        var m = new byte[16 + 4 + 16];
        MemoryMarshal.Write(m, (uint)m.Length);
        MemoryMarshal.Write(m.AsSpan(4), (ushort)2);
        MemoryMarshal.Write(m.AsSpan(8), seq);
        MemoryMarshal.Write(m.AsSpan(16), error);
        return m;
    }
}
