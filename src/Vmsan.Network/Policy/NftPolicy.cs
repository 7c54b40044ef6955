using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Vmsan.Network.Policy;

/// <summary>What a VM's table depends on besides its policy.</summary>
/// <param name="HostAddresses">Every address of the namespace vmsan runs in (read at setup): always denied.</param>
/// <param name="UpstreamDns">
/// The resolver the guest was given at boot. Under allow-all it stays reachable on port 53 even
/// when it sits in a private range (a LAN or VPC resolver), and only there.
/// </param>
public sealed record NftPolicyContext(IReadOnlyList<IPAddress> HostAddresses, IPAddress? UpstreamDns = null);

/// <summary>
/// Renders the whole <c>inet vmsan</c> table of a VM's namespace for a policy (layout in
/// <see cref="NftLayout"/>). The script is one <c>nft -f</c> transaction: tables, chains, sets and
/// counters are declared (a no-op when they exist), every chain and static set is flushed and
/// filled again. If any line fails, nothing changes and the old policy stays in force. The pin sets
/// and the counters keep their contents across changes (pins are flushed on request, when a
/// change removes a domain).
/// </summary>
public static class NftPolicy
{
    private const string GuestSide = "iifname != { \"" + VmNetworkPlan.NamespaceLink + "\", \"lo\" }";

    /// <summary>The script that puts <paramref name="policy"/> in force.</summary>
    /// <param name="flushPins">Empty the pin sets too (a change removed a domain).</param>
    /// <param name="dropLegacyTable">Also remove the <c>ip vmsan</c> table older versions used in the VM namespace.</param>
    public static string Render(NetworkPolicy policy, NftPolicyContext context, bool flushPins = false, bool dropLegacyTable = false)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(context);
        var t = $"{NftLayout.Family} {NftLayout.Table}";
        var sb = new StringBuilder(4096);
        if (dropLegacyTable)
            sb.Append("table ip vmsan {}\ndelete table ip vmsan\n");

        // 1. Declare everything (no rules, no elements).
        sb.Append("table ").Append(t).Append(" {\n");
        foreach (var (name, type, flags) in (ReadOnlySpan<(string, string, string)>)
                 [
                     (NftLayout.Pin4, "ipv4_addr", "timeout"), (NftLayout.Pin6, "ipv6_addr", "timeout"),
                     (NftLayout.Deny4, "ipv4_addr", "interval"), (NftLayout.Deny6, "ipv6_addr", "interval"),
                     (NftLayout.Allow4, "ipv4_addr", "interval"), (NftLayout.Allow6, "ipv6_addr", "interval"),
                     (NftLayout.Never4, "ipv4_addr", "interval"), (NftLayout.Never6, "ipv6_addr", "interval"),
                 ])
            sb.Append("  set ").Append(name).Append(" { type ").Append(type).Append("; flags ").Append(flags).Append("; }\n");
        foreach (var c in NftLayout.Counters)
            sb.Append("  counter ").Append(c).Append(" {}\n");
        sb.Append("  chain ").Append(NftLayout.Prerouting).Append(" { type nat hook prerouting priority dstnat; policy accept; }\n");
        sb.Append("  chain ").Append(NftLayout.GuestDnat).Append(" {}\n");
        sb.Append("  chain ").Append(NftLayout.Input).Append(" { type filter hook input priority filter; policy accept; }\n");
        sb.Append("  chain ").Append(NftLayout.GuestInput).Append(" {}\n");
        sb.Append("  chain ").Append(NftLayout.Forward).Append(" { type filter hook forward priority filter; policy drop; }\n");
        sb.Append("  chain ").Append(NftLayout.Egress).Append(" {}\n");
        sb.Append("  chain ").Append(NftLayout.Refuse).Append(" {}\n");
        foreach (var c in NftLayout.Counters)
            sb.Append("  chain ").Append(ReasonChain(c)).Append(" {}\n");
        sb.Append("  chain ").Append(NftLayout.Postrouting).Append(" { type nat hook postrouting priority srcnat; policy accept; }\n");
        sb.Append("}\n");

        // 2. Empty what this policy defines.
        foreach (var chain in AllChains())
            sb.Append("flush chain ").Append(t).Append(' ').Append(chain).Append('\n');
        foreach (var set in (ReadOnlySpan<string>)[NftLayout.Deny4, NftLayout.Deny6, NftLayout.Allow4, NftLayout.Allow6, NftLayout.Never4, NftLayout.Never6])
            sb.Append("flush set ").Append(t).Append(' ').Append(set).Append('\n');
        if (flushPins)
            sb.Append("flush set ").Append(t).Append(' ').Append(NftLayout.Pin4).Append('\n')
              .Append("flush set ").Append(t).Append(' ').Append(NftLayout.Pin6).Append('\n');

        // 3. Fill.
        var never = AlwaysDenied.Networks.Concat(context.HostAddresses.Select(IpRanges.Host)).ToList();
        AddElements(sb, t, NftLayout.Deny4, NftLayout.Deny6, policy.DeniedCidrs);
        AddElements(sb, t, NftLayout.Allow4, NftLayout.Allow6, policy.Mode == NetworkPolicyMode.Custom ? policy.AllowedCidrs : []);
        AddElements(sb, t, NftLayout.Never4, NftLayout.Never6, never);

        sb.Append("table ").Append(t).Append(" {\n");
        Chain(sb, NftLayout.Prerouting,
        [
            // IPv6 a guest routed itself never reaches the forward chain: the namespace's prohibit
            // route refuses it. Counted and logged here (first packet of each flow) like every refusal.
            $"{GuestSide} meta nfproto ipv6 fib daddr type != local counter name \"{NftLayout.CounterIpv6}\" " +
                string.Create(CultureInfo.InvariantCulture, $"limit rate 20/second burst 40 packets log prefix \"{NftLayout.CounterIpv6} \" group {NftLayout.LogGroup}"),
            $"{GuestSide} jump {NftLayout.GuestDnat}",
        ]);
        Chain(sb, NftLayout.GuestDnat, GuestDnatRules(policy));
        Chain(sb, NftLayout.Input, [$"{GuestSide} jump {NftLayout.GuestInput}"]);
        Chain(sb, NftLayout.GuestInput,
        [
            "ct state established,related accept",
            // Neighbour discovery is untracked: without this a guest that routes IPv6 through its
            // gateway's link-local address waits for a neighbour that never answers instead of
            // getting the namespace's refusal (ICMPv6 admin-prohibited from its prohibit route) at once.
            "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
            $"ip daddr {VmNetworkPlan.GatewayAddress} meta l4proto {{ tcp, udp }} th dport {NftLayout.DnsPort} accept",
            $"ip daddr {VmNetworkPlan.GatewayAddress} tcp dport {NftLayout.ProxyPort} ct status dnat accept",
            $"goto {ReasonChain(NftLayout.CounterNamespace)}",
        ]);
        Chain(sb, NftLayout.Forward,
        [
            $"iifname \"{VmNetworkPlan.NamespaceLink}\" ct state established,related accept",
            $"iifname != \"{VmNetworkPlan.NamespaceLink}\" jump {NftLayout.Egress}",
        ]);
        Chain(sb, NftLayout.Egress, EgressRules(policy, context));
        Chain(sb, NftLayout.Refuse,
        [
            "meta l4proto tcp reject with tcp reset",
            "reject with icmpx admin-prohibited",
        ]);
        foreach (var c in NftLayout.Counters)
        {
            Chain(sb, ReasonChain(c),
            [
                $"counter name \"{c}\"",
                string.Create(CultureInfo.InvariantCulture,
                    $"limit rate 20/second burst 40 packets log prefix \"{c} \" group {NftLayout.LogGroup}"),
                $"goto {NftLayout.Refuse}",
            ]);
        }
        Chain(sb, NftLayout.Postrouting, [$"oifname \"{VmNetworkPlan.NamespaceLink}\" masquerade"]);
        sb.Append("}\n");
        return sb.ToString();
    }

    /// <summary>The chain a refusal of one kind jumps to: counts it, logs it (rate-limited), refuses it.</summary>
    public static string ReasonChain(string counter) => "r_" + counter["refused_".Length..];

    private static IEnumerable<string> AllChains() =>
        new[] { NftLayout.Prerouting, NftLayout.GuestDnat, NftLayout.Input, NftLayout.GuestInput, NftLayout.Forward, NftLayout.Egress, NftLayout.Refuse }
            .Concat(NftLayout.Counters.Select(ReasonChain)).Append(NftLayout.Postrouting);

    private static List<string> GuestDnatRules(NetworkPolicy policy)
    {
        if (policy.Mode != NetworkPolicyMode.Custom || policy.AllowedDomains.Count == 0)
            return [];
        // CIDR destinations are not proxied; denied ones are never proxied (a pin cannot open them):
        // they go on to the forward chain, which refuses or accepts them on its own.
        return
        [
            $"ip daddr @{NftLayout.Deny4} return",
            $"ip6 daddr @{NftLayout.Deny6} return",
            $"ip daddr @{NftLayout.Allow4} return",
            $"ip6 daddr @{NftLayout.Allow6} return",
            $"ip daddr @{NftLayout.Never4} return",
            $"ip6 daddr @{NftLayout.Never6} return",
            // DNS and DoT to a pinned address stay with egress, which refuses them.
            "tcp dport { 53, 853 } return",
            $"meta l4proto tcp ip daddr @{NftLayout.Pin4} redirect to :{NftLayout.ProxyPort}",
            $"meta l4proto tcp ip6 daddr @{NftLayout.Pin6} redirect to :{NftLayout.ProxyPort}",
        ];
    }

    private static List<string> EgressRules(NetworkPolicy policy, NftPolicyContext context)
    {
        // Evaluated on every packet of the guest, established or not: nothing is accepted ahead of
        // the policy, and a live change that denies a destination stops its open connections at
        // their next packet (conntrack entries are deleted as well).
        var rules = new List<string>
        {
            $"ip daddr @{NftLayout.Deny4} goto {ReasonChain(NftLayout.CounterDeniedCidr)}",
            $"ip6 daddr @{NftLayout.Deny6} goto {ReasonChain(NftLayout.CounterDeniedCidr)}",
        };
        if (policy.Mode != NetworkPolicyMode.AllowAll)
        {
            // Before any allowed CIDR: under deny-all and custom the VM's filter is the only resolver.
            rules.Add($"meta l4proto {{ tcp, udp }} th dport {{ 53, 853 }} goto {ReasonChain(NftLayout.CounterDns)}");
        }
        if (policy.Mode == NetworkPolicyMode.Custom)
        {
            // UDP stays refused even to allowed CIDRs (only DNS to the filter): QUIC falls back to TCP.
            rules.Add($"ip daddr @{NftLayout.Allow4} meta l4proto {{ tcp, icmp }} accept");
            rules.Add($"ip6 daddr @{NftLayout.Allow6} meta l4proto {{ tcp, ipv6-icmp }} accept");
        }
        if (policy.Mode == NetworkPolicyMode.AllowAll && context.UpstreamDns is { AddressFamily: AddressFamily.InterNetwork } dns)
            rules.Add($"ip daddr {dns} meta l4proto {{ tcp, udp }} th dport 53 accept");
        rules.Add($"ip daddr @{NftLayout.Never4} goto {ReasonChain(NftLayout.CounterAlwaysDenied)}");
        rules.Add($"ip6 daddr @{NftLayout.Never6} goto {ReasonChain(NftLayout.CounterAlwaysDenied)}");
        // Guests have no IPv6 uplink: refuse IPv6 at once rather than let it time out somewhere.
        rules.Add($"meta nfproto ipv6 goto {ReasonChain(NftLayout.CounterIpv6)}");
        if (policy.Mode == NetworkPolicyMode.AllowAll)
        {
            rules.Add("accept");
            return rules;
        }
        rules.Add($"meta l4proto udp goto {ReasonChain(NftLayout.CounterUdp)}");
        rules.Add($"goto {ReasonChain(NftLayout.CounterPolicy)}");
        return rules;
    }

    private static void AddElements(StringBuilder sb, string table, string set4, string set6, IEnumerable<IPNetwork> networks)
    {
        var list = networks as IReadOnlyCollection<IPNetwork> ?? networks.ToList();
        foreach (var (set, family) in (ReadOnlySpan<(string, AddressFamily)>)[(set4, AddressFamily.InterNetwork), (set6, AddressFamily.InterNetworkV6)])
        {
            var elements = IpRanges.Elements(list, family);
            if (elements.Length > 0)
                sb.Append("add element ").Append(table).Append(' ').Append(set).Append(" { ").Append(elements).Append(" }\n");
        }
    }

    private static void Chain(StringBuilder sb, string name, IReadOnlyList<string> rules)
    {
        if (rules.Count == 0)
            return;
        sb.Append("  chain ").Append(name).Append(" {\n");
        foreach (var r in rules)
            sb.Append("    ").Append(r).Append('\n');
        sb.Append("  }\n");
    }
}
