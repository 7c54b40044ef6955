using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Vmsan.Network.Policy;

/// <summary>Scripts that add domain-resolved addresses to a VM's pin sets (for the DNS filter).</summary>
public static class NftPins
{
    /// <summary>
    /// <c>add element inet vmsan pin4 { 1.2.3.4 timeout 300s }</c> lines, with the caller's timeouts (the DNS filter applies its TTL floor); re-adding an element that
    /// exists is a no-op in nft (its timeout is not extended; delete-then-add refreshes it), so the
    /// script deletes first. Addresses in the always-denied set are skipped: a name never opens them.
    /// </summary>
    public static string AddScript(IEnumerable<(IPAddress Address, TimeSpan Ttl)> pins)
    {
        ArgumentNullException.ThrowIfNull(pins);
        var sb = new StringBuilder();
        foreach (var (address, ttl) in pins)
        {
            var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
            if (AlwaysDenied.Contains(a))
                continue;
            var set = a.AddressFamily == AddressFamily.InterNetwork ? NftLayout.Pin4 : NftLayout.Pin6;
            var seconds = (long)Math.Ceiling(Math.Max(ttl.TotalSeconds, 1));
            var t = $"{NftLayout.Family} {NftLayout.Table} {set}";
            sb.Append(CultureInfo.InvariantCulture, $"add element {t} {{ {a} }}\ndelete element {t} {{ {a} }}\nadd element {t} {{ {a} timeout {seconds}s }}\n");
        }
        return sb.ToString();
    }
}
