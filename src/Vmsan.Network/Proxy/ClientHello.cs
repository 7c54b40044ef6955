using System.Buffers.Binary;
using System.Text;

namespace Vmsan.Network.Proxy;

public enum PeekStatus
{
    /// <summary>Not enough bytes yet to decide.</summary>
    NeedMore,

    /// <summary>A complete ClientHello / request head was read.</summary>
    Complete,

    /// <summary>The bytes are not this protocol.</summary>
    NotThisProtocol,

    /// <summary>This protocol, but malformed or refused (too long, several names, ECH...).</summary>
    Invalid,
}

public readonly record struct PeekResult(PeekStatus Status, string? Name, string? Why = null);

/// <summary>
/// Finds the server name in a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), reassembled from as
/// many handshake records as it takes. Refuses what could hide the real name: several names, a
/// name that is not a host name, and Encrypted Client Hello (whose outer SNI is only a cover).
/// </summary>
public static class ClientHello
{
    public const int MaxHandshake = 64 * 1024;
    private const ushort ServerNameExtension = 0;
    private const ushort EncryptedClientHello = 0xfe0d;

    /// <summary>True when <paramref name="data"/> starts like a TLS handshake record.</summary>
    public static bool LooksLikeTls(ReadOnlySpan<byte> data) => data.Length >= 1 && data[0] == 0x16 && (data.Length < 2 || data[1] == 3);

    public static PeekResult Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
            return new(PeekStatus.NeedMore, null);
        if (!LooksLikeTls(data))
            return new(PeekStatus.NotThisProtocol, null);
        // Reassemble the handshake message from consecutive handshake records.
        var hs = new List<byte>();
        var pos = 0;
        int? need = null;
        while (need is null || hs.Count < need)
        {
            if (data.Length - pos < 5)
                return new(PeekStatus.NeedMore, null);
            if (data[pos] != 0x16 || data[pos + 1] != 3)
                return new(PeekStatus.Invalid, null, "not a handshake record");
            int len = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 3)..]);
            if (len == 0 || len > 16384 + 2048)
                return new(PeekStatus.Invalid, null, "bad record length");
            if (data.Length - pos - 5 < len)
                return new(PeekStatus.NeedMore, null);
            foreach (var b in data.Slice(pos + 5, len))
                hs.Add(b);
            pos += 5 + len;
            if (need is null && hs.Count >= 4)
            {
                if (hs[0] != 1)
                    return new(PeekStatus.Invalid, null, "first handshake message is not a ClientHello");
                need = 4 + ((hs[1] << 16) | (hs[2] << 8) | hs[3]);
                if (need > MaxHandshake)
                    return new(PeekStatus.Invalid, null, "ClientHello too long");
            }
        }
        return ParseHello(hs.ToArray().AsSpan(4, need.Value - 4));
    }

    private static PeekResult ParseHello(ReadOnlySpan<byte> h)
    {
        var r = new Reader(h);
        if (!r.Skip(2 + 32))
            return Bad("truncated");
        if (!r.Vector8(out _) || !r.Vector16(out _) || !r.Vector8(out _))
            return Bad("truncated");
        if (r.AtEnd)
            return new(PeekStatus.Complete, null); // no extensions: no name
        if (!r.Vector16(out var exts))
            return Bad("bad extensions");
        string? name = null;
        var seen = new HashSet<ushort>();
        var e = new Reader(exts);
        while (!e.AtEnd)
        {
            if (!e.U16(out var type) || !e.Vector16(out var body))
                return Bad("bad extension");
            if (!seen.Add(type))
                return Bad("repeated extension");
            if (type == EncryptedClientHello)
                return Bad("encrypted client hello");
            if (type != ServerNameExtension)
                continue;
            var s = new Reader(body);
            if (!s.Vector16(out var list) || !s.AtEnd)
                return Bad("bad server_name");
            var l = new Reader(list);
            while (!l.AtEnd)
            {
                if (!l.U8(out var nameType) || !l.Vector16(out var host))
                    return Bad("bad server_name");
                if (nameType != 0)
                    continue;
                if (name is not null)
                    return Bad("several server names");
                name = HostName(host);
                if (name is null)
                    return Bad("server name is not a host name");
            }
        }
        if (!r.AtEnd)
            return Bad("trailing bytes");
        return new(PeekStatus.Complete, name);
    }

    private static PeekResult Bad(string why) => new(PeekStatus.Invalid, null, why);

    /// <summary>The lower-cased LDH host name, or null when <paramref name="raw"/> is not one (IP literals included).</summary>
    public static string? HostName(ReadOnlySpan<byte> raw)
    {
        if (raw.Length is 0 or > 253)
            return null;
        if (raw[^1] == (byte)'.')
            raw = raw[..^1];
        var sb = new StringBuilder(raw.Length);
        var label = 0;
        foreach (var c in raw)
        {
            if (c == (byte)'.')
            {
                if (label == 0)
                    return null;
                label = 0;
                sb.Append('.');
                continue;
            }
            var ok = c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9' or (byte)'-' or (byte)'_';
            if (!ok || ++label > 63)
                return null;
            sb.Append(char.ToLowerInvariant((char)c));
        }
        if (label == 0)
            return null;
        var name = sb.ToString();
        // A numeric last label is an IP literal, not a name (RFC 6066 forbids literals in SNI).
        return name[(name.LastIndexOf('.') + 1)..].All(char.IsAsciiDigit) ? null : name;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _d = data;
        private int _p;

        public readonly bool AtEnd => _p == _d.Length;

        public bool Skip(int n)
        {
            if (_d.Length - _p < n)
                return false;
            _p += n;
            return true;
        }

        public bool U8(out byte v)
        {
            v = 0;
            if (_d.Length - _p < 1)
                return false;
            v = _d[_p++];
            return true;
        }

        public bool U16(out ushort v)
        {
            v = 0;
            if (_d.Length - _p < 2)
                return false;
            v = BinaryPrimitives.ReadUInt16BigEndian(_d[_p..]);
            _p += 2;
            return true;
        }

        public bool Vector8(out ReadOnlySpan<byte> v)
        {
            v = default;
            if (!U8(out var n) || _d.Length - _p < n)
                return false;
            v = _d.Slice(_p, n);
            _p += n;
            return true;
        }

        public bool Vector16(out ReadOnlySpan<byte> v)
        {
            v = default;
            if (!U16(out var n) || _d.Length - _p < n)
                return false;
            v = _d.Slice(_p, n);
            _p += n;
            return true;
        }
    }
}
