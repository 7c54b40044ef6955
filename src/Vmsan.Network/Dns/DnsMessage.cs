using System.Buffers.Binary;
using System.Text;

namespace Vmsan.Network.Dns;

/// <summary>DNS record types the filter looks at (RFC 1035, 3596, 9460).</summary>
public static class DnsType
{
    public const ushort A = 1;
    public const ushort NS = 2;
    public const ushort CNAME = 5;
    public const ushort SOA = 6;
    public const ushort PTR = 12;
    public const ushort MX = 15;
    public const ushort TXT = 16;
    public const ushort AAAA = 28;
    public const ushort DNAME = 39;
    public const ushort OPT = 41;
    public const ushort SVCB = 64;
    public const ushort HTTPS = 65;
    public const ushort ANY = 255;

    public static string Name(ushort type) => type switch
    {
        A => "A", NS => "NS", CNAME => "CNAME", SOA => "SOA", PTR => "PTR", MX => "MX", TXT => "TXT",
        AAAA => "AAAA", DNAME => "DNAME", OPT => "OPT", SVCB => "SVCB", HTTPS => "HTTPS", ANY => "ANY",
        _ => "TYPE" + type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

public static class DnsRcode
{
    public const int NoError = 0;
    public const int FormErr = 1;
    public const int ServFail = 2;
    public const int NxDomain = 3;
    public const int NotImp = 4;
    public const int Refused = 5;
}

/// <summary>One question: the name as sent (case kept) without the trailing dot ("" for the root).</summary>
public sealed record DnsQuestion(string Name, ushort Type, ushort Class);

/// <summary>
/// One resource record. Names inside RDATA of the types that may be compressed (RFC 3597 §4) are
/// decompressed when parsed, so <see cref="Data"/> never refers to the message it came from and the
/// record can be written into any other message.
/// </summary>
public sealed record DnsRecord(string Name, ushort Type, ushort Class, uint Ttl, byte[] Data);

public sealed class DnsFormatException(string message) : FormatException(message);

/// <summary>
/// A DNS message (RFC 1035 §4) parsed completely and written back without compression. Own code
/// rather than a library: Makaretu.Dns 2.0.1 needs a SimpleBase version that is not served (its
/// methods throw under NativeAOT), ARSoft.Tools.Net 3.6.1 raises an AOT warning (IL3050) and
/// brings BouncyCastle into the CLI, and DnsClient 1.8.0 cannot write messages. The filter needs
/// exactly this: read a query, read an answer, drop or edit records, write it back.
/// </summary>
public sealed class DnsMessage
{
    public const int HeaderSize = 12;
    private const int MaxNameLength = 255;
    private const int MaxPointerHops = 64;

    public ushort Id { get; set; }

    /// <summary>The 16 flag bits of the header (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode).</summary>
    public ushort Flags { get; set; }

    public List<DnsQuestion> Questions { get; } = [];
    public List<DnsRecord> Answers { get; } = [];
    public List<DnsRecord> Authority { get; } = [];
    public List<DnsRecord> Additional { get; } = [];

    public bool IsResponse => (Flags & 0x8000) != 0;
    public int Opcode => (Flags >> 11) & 0xF;
    public bool Truncated => (Flags & 0x0200) != 0;
    public int Rcode => Flags & 0xF;

    /// <summary>Parses <paramref name="wire"/>; throws <see cref="DnsFormatException"/> on anything malformed.</summary>
    public static DnsMessage Parse(ReadOnlySpan<byte> wire)
    {
        if (wire.Length < HeaderSize)
            throw new DnsFormatException("message shorter than its header");
        var m = new DnsMessage
        {
            Id = BinaryPrimitives.ReadUInt16BigEndian(wire),
            Flags = BinaryPrimitives.ReadUInt16BigEndian(wire[2..]),
        };
        int qd = BinaryPrimitives.ReadUInt16BigEndian(wire[4..]);
        int an = BinaryPrimitives.ReadUInt16BigEndian(wire[6..]);
        int ns = BinaryPrimitives.ReadUInt16BigEndian(wire[8..]);
        int ar = BinaryPrimitives.ReadUInt16BigEndian(wire[10..]);
        var pos = HeaderSize;
        for (var i = 0; i < qd; i++)
        {
            var name = ReadName(wire, ref pos);
            Need(wire, pos, 4);
            m.Questions.Add(new DnsQuestion(name, BinaryPrimitives.ReadUInt16BigEndian(wire[pos..]), BinaryPrimitives.ReadUInt16BigEndian(wire[(pos + 2)..])));
            pos += 4;
        }
        ReadRecords(wire, ref pos, an, m.Answers);
        ReadRecords(wire, ref pos, ns, m.Authority);
        ReadRecords(wire, ref pos, ar, m.Additional);
        // Trailing bytes are tolerated (some servers pad), but never interpreted.
        return m;
    }

    private static void ReadRecords(ReadOnlySpan<byte> wire, ref int pos, int count, List<DnsRecord> into)
    {
        for (var i = 0; i < count; i++)
        {
            var name = ReadName(wire, ref pos);
            Need(wire, pos, 10);
            var type = BinaryPrimitives.ReadUInt16BigEndian(wire[pos..]);
            var cls = BinaryPrimitives.ReadUInt16BigEndian(wire[(pos + 2)..]);
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(wire[(pos + 4)..]);
            int len = BinaryPrimitives.ReadUInt16BigEndian(wire[(pos + 8)..]);
            pos += 10;
            Need(wire, pos, len);
            var data = ReadData(wire, pos, len, type);
            pos += len;
            into.Add(new DnsRecord(name, type, cls, ttl, data));
        }
    }

    /// <summary>RDATA with any compressed names expanded (only the types RFC 3597 allows to compress).</summary>
    private static byte[] ReadData(ReadOnlySpan<byte> wire, int start, int len, ushort type)
    {
        var end = start + len;
        var p = start;
        switch (type)
        {
            case DnsType.CNAME or DnsType.NS or DnsType.PTR or DnsType.DNAME:
            {
                var target = ReadName(wire, ref p);
                if (p != end)
                    throw new DnsFormatException($"{DnsType.Name(type)} data has trailing bytes");
                var b = new ByteWriter();
                b.Name(target);
                return b.ToArray();
            }
            case DnsType.MX:
            {
                Need(wire, p, 2);
                var pref = BinaryPrimitives.ReadUInt16BigEndian(wire[p..]);
                p += 2;
                var target = ReadName(wire, ref p);
                if (p != end)
                    throw new DnsFormatException("MX data has trailing bytes");
                var b = new ByteWriter();
                b.U16(pref);
                b.Name(target);
                return b.ToArray();
            }
            case DnsType.SOA:
            {
                var mname = ReadName(wire, ref p);
                var rname = ReadName(wire, ref p);
                if (end - p != 20)
                    throw new DnsFormatException("SOA data has the wrong length");
                var b = new ByteWriter();
                b.Name(mname);
                b.Name(rname);
                b.Bytes(wire.Slice(p, 20));
                return b.ToArray();
            }
            default:
                return wire.Slice(start, len).ToArray();
        }
    }

    /// <summary>Reads a possibly compressed name at <paramref name="pos"/>, without the trailing dot.</summary>
    public static string ReadName(ReadOnlySpan<byte> wire, ref int pos)
    {
        var sb = new StringBuilder();
        var p = pos;
        var jumped = false;
        var hops = 0;
        var length = 1;
        while (true)
        {
            Need(wire, p, 1);
            int len = wire[p];
            if (len == 0)
            {
                p++;
                break;
            }
            if ((len & 0xC0) == 0xC0)
            {
                Need(wire, p, 2);
                var target = ((len & 0x3F) << 8) | wire[p + 1];
                if (!jumped)
                    pos = p + 2;
                jumped = true;
                // A pointer must go backwards (RFC 1035 prior occurrence); that alone rules out loops,
                // the hop count is a second fence.
                if (target >= p || ++hops > MaxPointerHops)
                    throw new DnsFormatException("compression pointer loop");
                p = target;
                continue;
            }
            if ((len & 0xC0) != 0)
                throw new DnsFormatException("unknown label type");
            Need(wire, p + 1, len);
            length += len + 1;
            if (length > MaxNameLength)
                throw new DnsFormatException("name longer than 255 octets");
            if (sb.Length > 0)
                sb.Append('.');
            foreach (var c in wire.Slice(p + 1, len))
            {
                // Case is kept (a stub resolver may compare the echoed question byte for byte); callers
                // compare names case-insensitively (RFC 4343). Anything outside printable ASCII, or a
                // dot inside a label, is escaped so two different names never print alike.
                if (c > 0x20 && c < 0x7F && c != (byte)'.' && c != (byte)'\\')
                    sb.Append((char)c);
                else
                    sb.Append('\\').Append(((int)c).ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
            }
            p += len + 1;
        }
        if (!jumped)
            pos = p;
        return sb.ToString();
    }

    private static void Need(ReadOnlySpan<byte> wire, int pos, int count)
    {
        if (pos < 0 || count < 0 || pos > wire.Length - count)
            throw new DnsFormatException("message ends early");
    }

    /// <summary>Writes the message without name compression.</summary>
    public byte[] Encode()
    {
        var b = new ByteWriter();
        b.U16(Id);
        b.U16(Flags);
        b.U16(checked((ushort)Questions.Count));
        b.U16(checked((ushort)Answers.Count));
        b.U16(checked((ushort)Authority.Count));
        b.U16(checked((ushort)Additional.Count));
        foreach (var q in Questions)
        {
            b.Name(q.Name);
            b.U16(q.Type);
            b.U16(q.Class);
        }
        foreach (var r in Answers.Concat(Authority).Concat(Additional))
        {
            b.Name(r.Name);
            b.U16(r.Type);
            b.U16(r.Class);
            b.U32(r.Ttl);
            b.U16(checked((ushort)r.Data.Length));
            b.Bytes(r.Data);
        }
        return b.ToArray();
    }

    /// <summary>A response to <paramref name="query"/> carrying only its question and <paramref name="rcode"/>.</summary>
    public static DnsMessage ReplyTo(DnsMessage query, int rcode)
    {
        ArgumentNullException.ThrowIfNull(query);
        // QR=1, same opcode and RD, RA=1 (we do recurse for allowed names).
        var flags = (ushort)(0x8000 | (query.Flags & 0x7900) | 0x0080 | (rcode & 0xF));
        var r = new DnsMessage { Id = query.Id, Flags = flags };
        r.Questions.AddRange(query.Questions);
        return r;
    }

    public sealed class ByteWriter
    {
        private readonly MemoryStream _ms = new();

        public void U16(ushort v)
        {
            Span<byte> b = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(b, v);
            _ms.Write(b);
        }

        public void U32(uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b, v);
            _ms.Write(b);
        }

        public void Bytes(ReadOnlySpan<byte> b) => _ms.Write(b);

        /// <summary>Writes a name as printed by <see cref="ReadName"/> (with its \DDD escapes).</summary>
        public void Name(string name)
        {
            var start = _ms.Length;
            if (name.Length > 0)
            {
                var label = new List<byte>(63);
                for (var i = 0; i <= name.Length; i++)
                {
                    if (i == name.Length || name[i] == '.')
                    {
                        if (label.Count is 0 or > 63)
                            throw new DnsFormatException($"bad label in '{name}'");
                        _ms.WriteByte((byte)label.Count);
                        _ms.Write(label.ToArray());
                        label.Clear();
                    }
                    else if (name[i] == '\\' && i + 3 < name.Length)
                    {
                        label.Add(byte.Parse(name.AsSpan(i + 1, 3), System.Globalization.CultureInfo.InvariantCulture));
                        i += 3;
                    }
                    else
                    {
                        label.Add((byte)name[i]);
                    }
                }
            }
            _ms.WriteByte(0);
            if (_ms.Length - start > MaxNameLength)
                throw new DnsFormatException($"name '{name}' longer than 255 octets");
        }

        public byte[] ToArray() => _ms.ToArray();
    }
}
