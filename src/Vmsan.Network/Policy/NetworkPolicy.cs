using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Vmsan.Core.Errors;

namespace Vmsan.Network.Policy;

/// <summary>How a VM's egress is decided; see <see cref="NetworkPolicy"/>.</summary>
public enum NetworkPolicyMode
{
    /// <summary>Everything but the always-denied set.</summary>
    AllowAll,

    /// <summary>Nothing but DNS to the VM's own filter.</summary>
    DenyAll,

    /// <summary>Allowed domains and CIDRs, minus denied CIDRs.</summary>
    Custom,
}

/// <summary>
/// A VM's egress policy. Immutable and always valid: build it with <see cref="Create"/> or
/// <see cref="Change"/>, which reject bad input with <see cref="ErrorCode.InvalidArgument"/>
/// naming the bad entry, before anything is created or changed.
/// </summary>
public sealed class NetworkPolicy
{
    /// <summary>Most entries (domains + allowed CIDRs + denied CIDRs) one policy may hold.</summary>
    public const int MaxEntries = 1024;

    public static readonly NetworkPolicy AllowAll = new(NetworkPolicyMode.AllowAll, [], [], []);
    public static readonly NetworkPolicy DenyAll = new(NetworkPolicyMode.DenyAll, [], [], []);

    private NetworkPolicy(NetworkPolicyMode mode, IReadOnlyList<string> domains, IReadOnlyList<IPNetwork> allowed, IReadOnlyList<IPNetwork> denied)
    {
        Mode = mode;
        AllowedDomains = domains;
        AllowedCidrs = allowed;
        DeniedCidrs = denied;
    }

    public NetworkPolicyMode Mode { get; }

    /// <summary>Lowercase names without a trailing dot; a leading <c>*.</c> matches every subdomain (not the apex).</summary>
    public IReadOnlyList<string> AllowedDomains { get; }

    public IReadOnlyList<IPNetwork> AllowedCidrs { get; }

    /// <summary>Checked before anything is allowed: a denied CIDR inside an allowed one wins.</summary>
    public IReadOnlyList<IPNetwork> DeniedCidrs { get; }

    public int EntryCount => AllowedDomains.Count + AllowedCidrs.Count + DeniedCidrs.Count;

    /// <summary>The wire name: <c>allow-all</c>, <c>deny-all</c>, <c>custom</c>.</summary>
    public string ModeName => ModeToName(Mode);

    public static string ModeToName(NetworkPolicyMode mode) => mode switch
    {
        NetworkPolicyMode.AllowAll => "allow-all",
        NetworkPolicyMode.DenyAll => "deny-all",
        _ => "custom",
    };

    /// <summary>Parses <c>allow-all</c>, <c>deny-all</c>, <c>custom</c>.</summary>
    public static NetworkPolicyMode ParseMode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "allow-all" => NetworkPolicyMode.AllowAll,
            "deny-all" => NetworkPolicyMode.DenyAll,
            "custom" => NetworkPolicyMode.Custom,
            _ => throw VmsanException.Invalid($"--network-policy: '{text}' is not a policy.",
                "Use --network-policy allow-all, deny-all or custom."),
        };
    }

    /// <summary>
    /// A policy from a mode (null: allow-all, or custom when any list is given) and the three lists.
    /// Lists together with allow-all or deny-all are refused: they would be silently meaningless.
    /// </summary>
    public static NetworkPolicy Create(string? mode, IEnumerable<string>? allowedDomains = null,
        IEnumerable<string>? allowedCidrs = null, IEnumerable<string>? deniedCidrs = null)
    {
        var domains = (allowedDomains ?? []).ToList();
        var allowed = (allowedCidrs ?? []).ToList();
        var denied = (deniedCidrs ?? []).ToList();
        var hasLists = domains.Count + allowed.Count + denied.Count > 0;
        var m = mode is null ? (hasLists ? NetworkPolicyMode.Custom : NetworkPolicyMode.AllowAll) : ParseMode(mode);
        if (m != NetworkPolicyMode.Custom && hasLists)
        {
            var first = domains.Select(d => "--allowed-domain " + d).Concat(allowed.Select(c => "--allowed-cidr " + c))
                .Concat(denied.Select(c => "--denied-cidr " + c)).First();
            throw VmsanException.Invalid($"{first}: lists cannot be combined with --network-policy {ModeToName(m)}.",
                "Use --network-policy custom (or leave --network-policy out) with allow/deny lists.");
        }
        return Build(m, domains, allowed, denied);
    }

    /// <summary>
    /// The policy after a live change: a new mode (allow-all/deny-all drop the lists), then entries
    /// added and removed. Adding to allow-all or deny-all makes the policy custom; removing an entry
    /// that is not there is an error (a typo would otherwise leave a destination open).
    /// </summary>
    public NetworkPolicy Change(string? mode = null,
        IEnumerable<string>? addDomains = null, IEnumerable<string>? removeDomains = null,
        IEnumerable<string>? addAllowedCidrs = null, IEnumerable<string>? removeAllowedCidrs = null,
        IEnumerable<string>? addDeniedCidrs = null, IEnumerable<string>? removeDeniedCidrs = null)
    {
        var m = mode is null ? Mode : ParseMode(mode);
        var domains = m == NetworkPolicyMode.Custom || mode is null ? AllowedDomains.ToList() : [];
        var allowed = m == NetworkPolicyMode.Custom || mode is null ? AllowedCidrs.Select(c => c.ToString()).ToList() : [];
        var denied = m == NetworkPolicyMode.Custom || mode is null ? DeniedCidrs.Select(c => c.ToString()).ToList() : [];
        var adds = (addDomains ?? []).Concat(addAllowedCidrs ?? []).Concat(addDeniedCidrs ?? []).ToList();
        if (adds.Count > 0)
        {
            if (mode is not null && m != NetworkPolicyMode.Custom)
                throw VmsanException.Invalid($"'{adds[0]}': entries cannot be added together with --network-policy {ModeToName(m)}.",
                    "Use --network-policy custom with --add-… flags, or change the mode alone.");
            m = NetworkPolicyMode.Custom;
        }
        foreach (var d in addDomains ?? [])
            domains.Add(NormalizeDomain(d));
        foreach (var c in addAllowedCidrs ?? [])
            allowed.Add(ParseCidr(c, "--add-allowed-cidr").ToString());
        foreach (var c in addDeniedCidrs ?? [])
            denied.Add(ParseCidr(c, "--add-denied-cidr").ToString());
        Remove(domains, removeDomains, NormalizeDomain, "--remove-allowed-domain", "allowed domains");
        Remove(allowed, removeAllowedCidrs, c => ParseCidr(c, "--remove-allowed-cidr").ToString(), "--remove-allowed-cidr", "allowed CIDRs");
        Remove(denied, removeDeniedCidrs, c => ParseCidr(c, "--remove-denied-cidr").ToString(), "--remove-denied-cidr", "denied CIDRs");
        return Build(m, domains, allowed, denied);
    }

    private static void Remove(List<string> list, IEnumerable<string>? remove, Func<string, string> normalize, string flag, string what)
    {
        foreach (var raw in remove ?? [])
        {
            var n = normalize(raw);
            if (list.RemoveAll(x => string.Equals(x, n, StringComparison.Ordinal)) == 0)
                throw VmsanException.Invalid($"{flag} {raw}: not in the policy's {what}.", "Run `vmsan network ID` to see the policy in force.");
        }
    }

    private static NetworkPolicy Build(NetworkPolicyMode mode, List<string> domains, List<string> allowed, List<string> denied)
    {
        var total = domains.Count + allowed.Count + denied.Count;
        if (total > MaxEntries)
            throw VmsanException.Invalid(string.Create(CultureInfo.InvariantCulture,
                    $"The policy has {total} entries; at most {MaxEntries} are allowed (domains and CIDRs together)."),
                "Merge CIDRs or use wildcard domains (*.example.com).");
        var d = domains.Select(NormalizeDomain).Distinct(StringComparer.Ordinal).ToList();
        var a = allowed.Select(c => ParseCidr(c, "--allowed-cidr")).Distinct().ToList();
        var n = denied.Select(c => ParseCidr(c, "--denied-cidr")).Distinct().ToList();
        return new NetworkPolicy(mode, d, a, n);
    }

    /// <summary>
    /// A CIDR (<c>203.0.113.0/24</c>, <c>2001:db8::/32</c>) or a single address (taken as /32 or /128).
    /// Host bits must be zero: <c>203.0.113.7/24</c> is refused rather than silently widened.
    /// </summary>
    public static IPNetwork ParseCidr(string text, string flag = "--allowed-cidr")
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var slash = t.IndexOf('/', StringComparison.Ordinal);
        var addressPart = slash < 0 ? t : t[..slash];
        if (!IsPlainAddress(addressPart) || !IPAddress.TryParse(addressPart, out var address) || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0))
            throw VmsanException.Invalid($"{flag} {text}: not an IPv4 or IPv6 CIDR.", "Write a CIDR like 203.0.113.0/24 or 2001:db8::/32, or a single address.");
        if (address.IsIPv4MappedToIPv6)
            throw VmsanException.Invalid($"{flag} {text}: an IPv4-mapped IPv6 address; write the IPv4 form.", "E.g. 203.0.113.0/24.");
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = max;
        if (slash >= 0)
        {
            var p = t[(slash + 1)..];
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit) || !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)
                throw VmsanException.Invalid($"{flag} {text}: the prefix length must be 0…{max}.", "Write a CIDR like 203.0.113.0/24.");
        }
        var network = new IPNetwork(MaskTo(address, prefix), prefix);
        if (!network.BaseAddress.Equals(address))
            throw VmsanException.Invalid($"{flag} {text}: host bits are set (the network is {network}).", $"Write {network}, or the single address {address}.");
        return network;
    }

    // IPAddress.TryParse also takes "1", "0x7f.1" and other inet_aton shorthands: only dotted quads and IPv6 here.
    private static bool IsPlainAddress(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
            return s.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.');
        var parts = s.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit) && (p.Length == 1 || p[0] != '0'));
    }

    private static IPAddress MaskTo(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    /// <summary>
    /// A domain pattern in canonical form (lowercase, no trailing dot), or INVALID_ARGUMENT: labels of
    /// letters, digits and inner hyphens, at least two labels, a wildcard only as a leading <c>*.</c>,
    /// never an IP address.
    /// </summary>
    public static string NormalizeDomain(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        if (t.EndsWith('.'))
            t = t[..^1];
        const string fix = "Write a name like api.github.com or *.pypi.org.";
        if (t.Length == 0)
            throw VmsanException.Invalid("--allowed-domain: empty name.", fix);
        if (IPAddress.TryParse(t.Trim('[', ']'), out _) && (t.Contains(':', StringComparison.Ordinal) || t.Split('.').Length == 4))
            throw VmsanException.Invalid($"--allowed-domain {text}: an IP address is not a domain.", "Use --allowed-cidr for addresses.");
        var name = t.StartsWith("*.", StringComparison.Ordinal) ? t[2..] : t;
        if (name.Contains('*', StringComparison.Ordinal))
            throw VmsanException.Invalid($"--allowed-domain {text}: a wildcard is only allowed as a leading '*.'.", fix);
        if (name.Length > 253)
            throw VmsanException.Invalid($"--allowed-domain {text}: longer than 253 characters.", fix);
        var labels = name.Split('.');
        if (labels.Length < 2)
            throw VmsanException.Invalid($"--allowed-domain {text}: needs at least two labels (a name, not a top-level domain).", fix);
        foreach (var l in labels)
        {
            if (l.Length is 0 or > 63 || l[0] == '-' || l[^1] == '-' || !l.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_'))
                throw VmsanException.Invalid($"--allowed-domain {text}: '{l}' is not a valid label.", fix);
        }
        if (labels[^1].All(char.IsAsciiDigit))
            throw VmsanException.Invalid($"--allowed-domain {text}: the top-level label is numeric (an address?).", "Use --allowed-cidr for addresses.");
        return t;
    }

    /// <summary>
    /// True when <paramref name="name"/> (a DNS name, any case, trailing dot or not) is matched by
    /// <paramref name="pattern"/> (canonical form): equal, or for <c>*.example.com</c> any subdomain, not the apex.
    /// </summary>
    public static bool DomainMatches(string pattern, string name)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(name);
        var n = name.EndsWith('.') ? name[..^1] : name;
        if (pattern.StartsWith("*.", StringComparison.Ordinal))
            return n.Length > pattern.Length - 1 && n.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase);
        return string.Equals(n, pattern, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>True when any allowed domain matches <paramref name="name"/>.</summary>
    public bool AllowsDomain(string name) => AllowedDomains.Any(p => DomainMatches(p, name));

    /// <summary>
    /// Whether the guest may open a TCP connection to <paramref name="address"/> directly (without a
    /// domain): the same decision the nft table makes, for conntrack cleanup and tests.
    /// </summary>
    public bool AllowsAddress(IPAddress address, IEnumerable<IPAddress> hostAddresses)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (DeniedCidrs.Any(c => c.Contains(address)))
            return false;
        if (Mode == NetworkPolicyMode.Custom && AllowedCidrs.Any(c => c.Contains(address)))
            return true;
        if (AlwaysDenied.Contains(address, hostAddresses))
            return false;
        return Mode == NetworkPolicyMode.AllowAll && address.AddressFamily == AddressFamily.InterNetwork;
    }

    public override string ToString() => Mode != NetworkPolicyMode.Custom ? ModeName
        : $"custom ({AllowedDomains.Count} domains, {AllowedCidrs.Count} allowed CIDRs, {DeniedCidrs.Count} denied CIDRs)";
}
