namespace Vmsan.Network;

/// <summary>
/// The nftables scripts vmsan loads (each with <c>nft -f -</c>, one transaction). Both namespaces use
/// a table <c>ip vmsan</c>; the chain names are public so the per-VM egress policy can build on them.
/// </summary>
public static class NftRulesets
{
    public const string Family = "ip";
    public const string Table = "vmsan";
    public const string PostroutingChain = "postrouting";

    /// <summary>
    /// The VM namespace's forward chain: traffic between the guest (tap0) and the world (eth0).
    /// Policy accept for now; the egress policy turns it into default drop with its rules before any accept.
    /// (Not named <c>fwd</c>: that is a reserved word in nft.)
    /// </summary>
    public const string ForwardChain = "forward";

    /// <summary>
    /// The shared table in the namespace vmsan runs in. Declaring a table or chain that exists is a
    /// no-op, and the flushes empty only vmsan's two base chains, all in one transaction: however many
    /// setups run at once, the result is one table with exactly these rules. Other vmsan features
    /// (published ports) add chains of their own, which this never touches.
    /// </summary>
    public static string Host() => $$"""
        table {{Family}} {{Table}} {
          chain {{PostroutingChain}} {
            type nat hook postrouting priority srcnat; policy accept;
          }
          chain {{ForwardChain}} {
            type filter hook forward priority filter; policy accept;
          }
        }
        flush chain {{Family}} {{Table}} {{PostroutingChain}}
        flush chain {{Family}} {{Table}} {{ForwardChain}}
        table {{Family}} {{Table}} {
          chain {{PostroutingChain}} {
            ip saddr {{VmNetworkPlan.TransitPrefix}} oifname != "{{VmNetworkPlan.HostLinkPrefix}}*" masquerade
          }
          chain {{ForwardChain}} {
            ip saddr {{VmNetworkPlan.TransitPrefix}} accept
            ip daddr {{VmNetworkPlan.TransitPrefix}} ct state established,related accept
          }
        }

        """;

    /// <summary>
    /// The table inside a VM's namespace, replaced whole (declare, delete, define: valid whether or not
    /// it existed). Guest traffic leaving through eth0 is masqueraded to the namespace's veth address.
    /// Connections from the host side into the guest are dropped unless they were DNATed there on
    /// purpose (published ports): the agent is reached from a socket inside the namespace, never routed to.
    /// </summary>
    public static string Vm() => $$"""
        table {{Family}} {{Table}} {}
        delete table {{Family}} {{Table}}
        table {{Family}} {{Table}} {
          chain {{PostroutingChain}} {
            type nat hook postrouting priority srcnat; policy accept;
            oifname "{{VmNetworkPlan.NamespaceLink}}" masquerade
          }
          chain {{ForwardChain}} {
            type filter hook forward priority filter; policy accept;
            ct state established,related accept
            iifname "{{VmNetworkPlan.NamespaceLink}}" oifname "{{VmNetworkPlan.TapName}}" ct status dnat accept
            iifname "{{VmNetworkPlan.NamespaceLink}}" oifname "{{VmNetworkPlan.TapName}}" ct state new drop
          }
        }

        """;
}
