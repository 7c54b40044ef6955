namespace Vmsan.Network;

/// <summary>
/// The nftables script of the namespace vmsan runs in (<c>nft -f -</c>, one transaction): a table
/// <c>ip vmsan</c>. Each VM's own namespace has an <c>inet vmsan</c> table instead, rendered from its
/// policy by <see cref="Policy.NftPolicy"/>.
/// </summary>
public static class NftRulesets
{
    public const string Family = "ip";
    public const string Table = "vmsan";
    public const string PostroutingChain = "postrouting";

    /// <summary>The forward chain (not named <c>fwd</c>: that is a reserved word in nft).</summary>
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
}
