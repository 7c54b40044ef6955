using System.Buffers.Binary;

namespace Vmsan.Network.Dns;

/// <summary>
/// Edits the parameters of SVCB/HTTPS RDATA (RFC 9460 §2.2): priority, target name, then
/// key/length/value triples in increasing key order.
/// </summary>
public static class SvcbParams
{
    public const ushort Mandatory = 0;
    public const ushort Ipv4Hint = 4;
    public const ushort Ech = 5;
    public const ushort Ipv6Hint = 6;

    /// <summary>
    /// RDATA without the keys in <paramref name="remove"/>, or null when the record must be dropped
    /// (malformed, or a removed key is listed as mandatory: a client would then reject the record).
    /// </summary>
    public static byte[]? Without(byte[] rdata, IReadOnlySet<ushort> remove)
    {
        ArgumentNullException.ThrowIfNull(rdata);
        ArgumentNullException.ThrowIfNull(remove);
        try
        {
            ReadOnlySpan<byte> d = rdata;
            if (d.Length < 3)
                return null;
            var pos = 2;
            _ = DnsMessage.ReadName(d, ref pos);
            var head = pos;
            var kept = new DnsMessage.ByteWriter();
            kept.Bytes(d[..head]);
            var changed = false;
            while (pos < d.Length)
            {
                if (d.Length - pos < 4)
                    return null;
                var key = BinaryPrimitives.ReadUInt16BigEndian(d[pos..]);
                int len = BinaryPrimitives.ReadUInt16BigEndian(d[(pos + 2)..]);
                if (d.Length - pos - 4 < len)
                    return null;
                var value = d.Slice(pos + 4, len);
                if (key == Mandatory)
                {
                    for (var i = 0; i + 1 < value.Length; i += 2)
                        if (remove.Contains(BinaryPrimitives.ReadUInt16BigEndian(value[i..])))
                            return null;
                }
                if (remove.Contains(key))
                    changed = true;
                else
                    kept.Bytes(d.Slice(pos, 4 + len));
                pos += 4 + len;
            }
            return changed ? kept.ToArray() : rdata;
        }
        catch (DnsFormatException)
        {
            return null;
        }
    }
}
