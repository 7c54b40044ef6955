namespace Vmsan.Network.Dns;

/// <summary>
/// What the DNS filter and the pinning proxy need of a VM's network policy.
/// <see cref="ForwardAll"/> (allow-all): every name is forwarded and nothing is pinned.
/// Otherwise only names matching <see cref="AllowedDomains"/> are forwarded (deny-all: none).
/// </summary>
public sealed record DnsPolicy(bool ForwardAll, IReadOnlyList<string> AllowedDomains)
{
    public static readonly DnsPolicy AllowAll = new(true, []);
    public static readonly DnsPolicy DenyAll = new(false, []);

    public static DnsPolicy Domains(params string[] patterns) => new(false, patterns);

    /// <summary>The rule that lets <paramref name="name"/> through ("allow-all" or the matching pattern), or null.</summary>
    public string? RuleFor(string name) => ForwardAll ? "allow-all" : DomainMatch.FirstMatch(AllowedDomains, name);

    /// <summary>True when guest TCP to resolved addresses goes through the proxy (the policy lists domains).</summary>
    public bool Pins => !ForwardAll && AllowedDomains.Count > 0;
}

public static class DnsPolicyExtensions
{
    /// <summary>What the filter and the proxy need of a VM's <see cref="Policy.NetworkPolicy"/>.</summary>
    public static DnsPolicy ForDns(this Policy.NetworkPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy.Mode switch
        {
            Policy.NetworkPolicyMode.AllowAll => DnsPolicy.AllowAll,
            Policy.NetworkPolicyMode.DenyAll => DnsPolicy.DenyAll,
            _ => new DnsPolicy(false, policy.AllowedDomains),
        };
    }
}
