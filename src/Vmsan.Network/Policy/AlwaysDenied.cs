using System.Net;

namespace Vmsan.Network.Policy;

/// <summary>
/// Destinations a guest never reaches under any policy, allow-all included, unless a policy's
/// allowed CIDR names them explicitly: cloud metadata, private and shared ranges (other VMs and
/// the transit prefix among them), loopback, multicast and the IPv6 equivalents. The addresses
/// of the namespace vmsan runs in are added per VM at setup (they depend on the host).
/// </summary>
public static class AlwaysDenied
{
    /// <summary>The fixed part of the set, IPv4 then IPv6.</summary>
    public static readonly IReadOnlyList<IPNetwork> Networks =
    [
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse(VmNetworkPlan.TransitPrefix),
        IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.168.0.0/16"),
        // Multicast, then the reserved 240/4, which includes the limited broadcast 255.255.255.255.
        IPNetwork.Parse("224.0.0.0/4"),
        IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"),
        IPNetwork.Parse("::1/128"),
        // IPv4-mapped IPv6 would otherwise be a second spelling of every IPv4 address above.
        IPNetwork.Parse("::ffff:0:0/96"),
        IPNetwork.Parse("fc00::/7"),
        IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("ff00::/8"),
    ];

    /// <summary>True when <paramref name="address"/> is in the fixed set (host addresses not included).</summary>
    public static bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        foreach (var n in Networks)
        {
            if (n.Contains(address))
                return true;
        }
        return false;
    }

    /// <summary>
    /// True when <paramref name="address"/> is denied for a VM whose host has <paramref name="hostAddresses"/>:
    /// the fixed set, or an address of the namespace vmsan runs in.
    /// </summary>
    public static bool Contains(IPAddress address, IEnumerable<IPAddress> hostAddresses)
    {
        ArgumentNullException.ThrowIfNull(hostAddresses);
        return Contains(address) || hostAddresses.Contains(address);
    }
}
