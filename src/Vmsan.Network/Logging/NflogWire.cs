using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Vmsan.Network.Logging;

/// <summary>What one netlink message of an nfnetlink_log socket carried.</summary>
public enum NflogItemKind
{
    /// <summary>A logged packet (NFULNL_MSG_PACKET).</summary>
    Packet,

    /// <summary>NLMSG_ERROR with error 0: a request was done.</summary>
    Ack,

    /// <summary>NLMSG_ERROR with an errno: a request failed.</summary>
    Error,

    /// <summary>Anything else (NOOP, DONE, OVERRUN, other subsystems).</summary>
    Other,
}

/// <param name="Error">For <see cref="NflogItemKind.Error"/>: the errno (positive).</param>
public sealed record NflogItem(NflogItemKind Kind, uint Sequence, int Error = 0, NflogPacket? Packet = null);

/// <summary>A packet an nft <c>log group N</c> rule sent up.</summary>
/// <param name="Prefix">The rule's <c>log prefix</c>, trailing blanks removed; null when it had none.</param>
/// <param name="Time">The kernel's timestamp when the packet had one.</param>
/// <param name="Summary">Addresses, protocol and ports from the copied headers; null when they were cut or malformed.</param>
public sealed record NflogPacket(string? Prefix, DateTimeOffset? Time, PacketSummary? Summary);

/// <summary>The fields of an IP packet's headers a refusal is reported with.</summary>
public sealed record PacketSummary(IPAddress Source, IPAddress Destination, string Protocol, int? SourcePort = null, int? DestinationPort = null,
    int? IcmpType = null, int? IcmpCode = null)
{
    /// <summary><c>ADDR:PORT</c> (<c>[ADDR]:PORT</c> for IPv6), or the address alone for protocols without ports.</summary>
    public string DestinationText => DestinationPort is { } p
        ? (Destination.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Destination}]" : Destination.ToString())
          + ":" + p.ToString(CultureInfo.InvariantCulture)
        : Destination.ToString();

    /// <summary>
    /// Parses the start of an IPv4 or IPv6 packet (as much as the log copied). Never throws: null
    /// when the bytes are not an IP header. Ports are left out of non-first fragments.
    /// </summary>
    public static PacketSummary? Parse(ReadOnlySpan<byte> p)
    {
        if (p.Length < 1)
            return null;
        return (p[0] >> 4) switch
        {
            4 => ParseV4(p),
            6 => ParseV6(p),
            _ => null,
        };
    }

    private static PacketSummary? ParseV4(ReadOnlySpan<byte> p)
    {
        if (p.Length < 20)
            return null;
        var ihl = (p[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > p.Length)
            return null;
        var src = new IPAddress(p.Slice(12, 4));
        var dst = new IPAddress(p.Slice(16, 4));
        var fragmentOffset = ((p[6] & 0x1f) << 8) | p[7];
        return Transport(src, dst, p[9], fragmentOffset == 0 ? p[ihl..] : default, fragmentOffset == 0);
    }

    private static PacketSummary? ParseV6(ReadOnlySpan<byte> p)
    {
        if (p.Length < 40)
            return null;
        var src = new IPAddress(p.Slice(8, 16));
        var dst = new IPAddress(p.Slice(24, 16));
        int next = p[6];
        var off = 40;
        // Walk a bounded number of extension headers (hop-by-hop, routing, destination options, fragment).
        for (var i = 0; i < 8; i++)
        {
            if (next is 0 or 43 or 60)
            {
                if (off + 2 > p.Length)
                    return new PacketSummary(src, dst, ProtocolName(next));
                var nh = p[off];
                off += (p[off + 1] + 1) * 8;
                next = nh;
            }
            else if (next == 44)
            {
                if (off + 8 > p.Length)
                    return new PacketSummary(src, dst, ProtocolName(next));
                var nh = p[off];
                var fragmentOffset = BinaryPrimitives.ReadUInt16BigEndian(p.Slice(off + 2, 2)) >> 3;
                off += 8;
                next = nh;
                if (fragmentOffset != 0)
                    return Transport(src, dst, next, default, false);
            }
            else
                break;
        }
        return Transport(src, dst, next, off <= p.Length ? p[off..] : default, off <= p.Length);
    }

    private static PacketSummary Transport(IPAddress src, IPAddress dst, int protocol, ReadOnlySpan<byte> l4, bool first)
    {
        var name = ProtocolName(protocol);
        if (!first)
            return new PacketSummary(src, dst, name);
        return protocol switch
        {
            6 or 17 when l4.Length >= 4 => new PacketSummary(src, dst, name,
                BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4[2..])),
            1 or 58 when l4.Length >= 2 => new PacketSummary(src, dst, name, IcmpType: l4[0], IcmpCode: l4[1]),
            _ => new PacketSummary(src, dst, name),
        };
    }

    private static string ProtocolName(int protocol) => protocol switch
    {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        _ => protocol.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// The nfnetlink_log wire format (linux/netfilter/nfnetlink_log.h): netlink messages of subsystem
/// NFNL_SUBSYS_ULOG. Our own, as small as the job: .NET has no netlink support and no maintained
/// package reads NFLOG. Parsing never throws on any input (fuzzed with CsCheck); headers are in
/// host byte order, attribute values in network byte order.
/// </summary>
public static class NflogWire
{
    public const int NetlinkHeaderLength = 16;
    private const ushort NlmsgError = 2;
    private const ushort NlmFRequest = 0x1;
    private const ushort NlmFAck = 0x4;
    private const int SubsysUlog = 4;

    /// <summary>NFULNL_MSG_PACKET.</summary>
    public const ushort PacketMessage = SubsysUlog << 8 | 0;

    /// <summary>NFULNL_MSG_CONFIG.</summary>
    public const ushort ConfigMessage = SubsysUlog << 8 | 1;

    // enum nfulnl_attr_type
    public const ushort AttrPacketHeader = 1;
    public const ushort AttrTimestamp = 3;
    public const ushort AttrPayload = 9;
    public const ushort AttrPrefix = 10;

    // enum nfulnl_attr_config
    private const ushort CfgCmd = 1;
    private const ushort CfgMode = 2;
    private const ushort CfgQueueThreshold = 5;
    private const byte CmdBind = 1;
    private const byte CopyPacket = 2;

    private static int Align(int n) => (n + 3) & ~3;

    /// <summary>Splits one datagram into its messages; a truncated or malformed tail is ignored.</summary>
    public static List<NflogItem> Parse(ReadOnlySpan<byte> datagram)
    {
        var items = new List<NflogItem>();
        var b = datagram;
        while (b.Length >= NetlinkHeaderLength)
        {
            var len = MemoryMarshal.Read<uint>(b);
            var type = MemoryMarshal.Read<ushort>(b[4..]);
            var seq = MemoryMarshal.Read<uint>(b[8..]);
            if (len < NetlinkHeaderLength || len > (uint)b.Length)
                break;
            var body = b[NetlinkHeaderLength..(int)len];
            switch (type)
            {
                case NlmsgError when body.Length >= 4:
                    var error = MemoryMarshal.Read<int>(body);
                    items.Add(error == 0
                        ? new NflogItem(NflogItemKind.Ack, seq)
                        : new NflogItem(NflogItemKind.Error, seq, error == int.MinValue ? int.MaxValue : Math.Abs(error)));
                    break;
                case PacketMessage when body.Length >= 4:
                    items.Add(new NflogItem(NflogItemKind.Packet, seq, Packet: ParsePacket(body[4..])));
                    break;
                default:
                    items.Add(new NflogItem(NflogItemKind.Other, seq));
                    break;
            }
            var advance = Align((int)len);
            if (advance >= b.Length)
                break;
            b = b[advance..];
        }
        return items;
    }

    private static NflogPacket ParsePacket(ReadOnlySpan<byte> attrs)
    {
        string? prefix = null;
        DateTimeOffset? time = null;
        PacketSummary? summary = null;
        var a = attrs;
        while (a.Length >= 4)
        {
            var alen = MemoryMarshal.Read<ushort>(a);
            var atype = (ushort)(MemoryMarshal.Read<ushort>(a[2..]) & 0x3fff);
            if (alen < 4 || alen > a.Length)
                break;
            var value = a[4..alen];
            switch (atype)
            {
                case AttrPrefix:
                    prefix = Printable(value);
                    break;
                case AttrTimestamp when value.Length >= 16:
                    var sec = BinaryPrimitives.ReadInt64BigEndian(value);
                    var usec = BinaryPrimitives.ReadInt64BigEndian(value[8..]);
                    if (sec is > 0 and < 253_402_300_799 && usec is >= 0 and < 1_000_000)
                        time = DateTimeOffset.FromUnixTimeSeconds(sec).AddTicks(usec * 10);
                    break;
                case AttrPayload:
                    summary = PacketSummary.Parse(value);
                    break;
            }
            var advance = Align(alen);
            if (advance >= a.Length)
                break;
            a = a[advance..];
        }
        return new NflogPacket(prefix, time, summary);
    }

    /// <summary>The prefix up to its NUL, printable ASCII only, trailing blanks removed.</summary>
    private static string? Printable(ReadOnlySpan<byte> value)
    {
        var nul = value.IndexOf((byte)0);
        if (nul >= 0)
            value = value[..nul];
        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
            sb.Append(c is >= 0x20 and < 0x7f ? (char)c : '?');
        var s = sb.ToString().TrimEnd();
        return s.Length == 0 ? null : s;
    }

    /// <summary>Binds this socket to NFLOG <paramref name="group"/> (fails with EBUSY when another socket of the namespace holds it).</summary>
    public static byte[] BindRequest(uint seq, ushort group) => Config(seq, group, [(CfgCmd, [CmdBind])]);

    /// <summary>Copies <paramref name="copyRange"/> bytes of each packet and delivers every packet at once (queue threshold 1).</summary>
    public static byte[] ModeRequest(uint seq, ushort group, uint copyRange)
    {
        var mode = new byte[6];
        BinaryPrimitives.WriteUInt32BigEndian(mode, copyRange);
        mode[4] = CopyPacket;
        var threshold = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(threshold, 1);
        return Config(seq, group, [(CfgMode, mode), (CfgQueueThreshold, threshold)]);
    }

    private static byte[] Config(uint seq, ushort group, (ushort Type, byte[] Value)[] attrs)
    {
        var length = NetlinkHeaderLength + 4 + attrs.Sum(x => Align(4 + x.Value.Length));
        var m = new byte[length];
        var s = m.AsSpan();
        MemoryMarshal.Write(s, (uint)length);
        MemoryMarshal.Write(s[4..], ConfigMessage);
        MemoryMarshal.Write(s[6..], (ushort)(NlmFRequest | NlmFAck));
        MemoryMarshal.Write(s[8..], seq);
        // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, the group in network order.
        BinaryPrimitives.WriteUInt16BigEndian(s[(NetlinkHeaderLength + 2)..], group);
        var off = NetlinkHeaderLength + 4;
        foreach (var (type, value) in attrs)
        {
            MemoryMarshal.Write(s[off..], (ushort)(4 + value.Length));
            MemoryMarshal.Write(s[(off + 2)..], type);
            value.CopyTo(s[(off + 4)..]);
            off += Align(4 + value.Length);
        }
        return m;
    }
}
