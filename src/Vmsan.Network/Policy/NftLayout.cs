namespace Vmsan.Network.Policy;

/// <summary>
/// Names in the per-VM table <c>inet vmsan</c> (docs/internals.md, "Network policy"). Public so the
/// DNS filter and the SNI/Host proxy can add pins and find their ports.
/// </summary>
public static class NftLayout
{
    public const string Family = "inet";
    public const string Table = "vmsan";

    public const string Prerouting = "prerouting";
    public const string GuestDnat = "guest_dnat";
    public const string Input = "input";
    public const string GuestInput = "guest_input";
    public const string Forward = "forward";
    public const string Egress = "egress";
    public const string Refuse = "refuse";
    public const string Postrouting = "postrouting";

    /// <summary>Addresses resolved for allowed domains (filled by the DNS filter, per-element timeouts).</summary>
    public const string Pin4 = "pin4";
    public const string Pin6 = "pin6";

    /// <summary>The policy's denied CIDRs; checked first.</summary>
    public const string Deny4 = "deny4";
    public const string Deny6 = "deny6";

    /// <summary>The policy's allowed CIDRs.</summary>
    public const string Allow4 = "allow4";
    public const string Allow6 = "allow6";

    /// <summary>The always-denied set plus the addresses of the namespace vmsan runs in.</summary>
    public const string Never4 = "never4";
    public const string Never6 = "never6";

    /// <summary>TCP port on the gateway the transparent proxy listens on (guest TCP to pinned addresses is redirected there).</summary>
    public const int ProxyPort = 15001;

    /// <summary>DNS filter port on the gateway (UDP and TCP).</summary>
    public const int DnsPort = 53;

    /// <summary>NFLOG group refusals are logged to (rate-limited).</summary>
    public const int LogGroup = 7;

    /// <summary>Named counters, one per refusal rule; <c>vmsan network</c> reports them.</summary>
    public static readonly IReadOnlyList<string> Counters =
    [
        CounterDeniedCidr, CounterAlwaysDenied, CounterPolicy, CounterDns, CounterUdp, CounterIpv6, CounterNamespace,
    ];

    public const string CounterDeniedCidr = "refused_denied_cidr";
    public const string CounterAlwaysDenied = "refused_always_denied";
    public const string CounterPolicy = "refused_policy";
    public const string CounterDns = "refused_dns";
    public const string CounterUdp = "refused_udp";
    public const string CounterIpv6 = "refused_ipv6";
    public const string CounterNamespace = "refused_namespace";
}
