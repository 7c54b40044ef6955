using System.Net;
using System.Net.Sockets;

namespace Vmsan.Network.Policy;

/// <summary>
/// Merges networks into disjoint, sorted address ranges, the form an nft interval set needs:
/// nft refuses overlapping elements (10/8 and 10.231/16, a host address inside a private range)
/// unless auto-merge is on, and auto-merge inside a transaction that also flushes the set is
/// where nft has had bugs; merging here keeps the script plain.
/// </summary>
public static class IpRanges
{
    public readonly record struct Range(UInt128 First, UInt128 Last);

    /// <summary>The merged ranges of the networks of <paramref name="family"/>.</summary>
    public static List<Range> Merge(IEnumerable<IPNetwork> networks, AddressFamily family)
    {
        ArgumentNullException.ThrowIfNull(networks);
        var bits = family == AddressFamily.InterNetwork ? 32 : 128;
        var ranges = networks
            .Where(n => n.BaseAddress.AddressFamily == family)
            .Select(n =>
            {
                var first = ToNumber(n.BaseAddress);
                var hostBits = bits - n.PrefixLength;
                var span = hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
                return new Range(first, first + span);
            })
            .OrderBy(r => r.First)
            .ToList();
        var merged = new List<Range>(ranges.Count);
        foreach (var r in ranges)
        {
            if (merged.Count > 0 && (merged[^1].Last == UInt128.MaxValue || r.First <= merged[^1].Last + 1))
            {
                if (r.Last > merged[^1].Last)
                    merged[^1] = merged[^1] with { Last = r.Last };
                continue;
            }
            merged.Add(r);
        }
        return merged;
    }

    /// <summary>nft set elements for the merged ranges: <c>a</c> for one address, <c>a-b</c> otherwise.</summary>
    public static string Elements(IEnumerable<IPNetwork> networks, AddressFamily family) =>
        string.Join(", ", Merge(networks, family).Select(r => r.First == r.Last
            ? ToAddress(r.First, family).ToString()
            : $"{ToAddress(r.First, family)}-{ToAddress(r.Last, family)}"));

    public static UInt128 ToNumber(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var bytes = address.GetAddressBytes();
        UInt128 v = 0;
        foreach (var b in bytes)
            v = (v << 8) | b;
        return v;
    }

    public static IPAddress ToAddress(UInt128 value, AddressFamily family)
    {
        var bytes = new byte[family == AddressFamily.InterNetwork ? 4 : 16];
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xff);
            value >>= 8;
        }
        return new IPAddress(bytes);
    }

    /// <summary>A single-address network (/32 or /128).</summary>
    public static IPNetwork Host(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        return new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
    }
}
