using Vmsan.Errors;
using Vmsan.Network.Policy;

namespace Vmsan;

/// <summary>
/// A VM's egress policy: <c>allow-all</c>, <c>deny-all</c>, or <c>custom</c> with allowed domains (<c>*.example.com</c>
/// wildcards), allowed CIDRs and denied CIDRs (denied wins). Immutable; every value is checked when it is made, so a
/// policy that exists is valid. The always-denied set (metadata, link-local, the host) holds under every policy.
/// </summary>
public sealed class EgressPolicy
{
    internal EgressPolicy(NetworkPolicy inner) => Inner = inner;

    /// <summary>The network code's policy this one is.</summary>
    internal NetworkPolicy Inner { get; }

    /// <summary>Everything is allowed (except the always-denied set).</summary>
    public static EgressPolicy AllowAll { get; } = new(NetworkPolicy.AllowAll);

    /// <summary>Nothing leaves the VM.</summary>
    public static EgressPolicy DenyAll { get; } = new(NetworkPolicy.DenyAll);

    /// <summary><c>allow-all</c>, <c>deny-all</c> or <c>custom</c>.</summary>
    public string Mode => Inner.ModeName;

    /// <summary>Custom: the domains the guest may resolve and reach (normalised, lower case).</summary>
    public IReadOnlyList<string> AllowedDomains => Inner.AllowedDomains;

    /// <summary>Custom: the networks the guest may reach.</summary>
    public IReadOnlyList<string> AllowedCidrs => [.. Inner.AllowedCidrs.Select(c => c.ToString())];

    /// <summary>Networks the guest may never reach (they win over allowed ones).</summary>
    public IReadOnlyList<string> DeniedCidrs => [.. Inner.DeniedCidrs.Select(c => c.ToString())];

    /// <summary>
    /// A policy from a mode (null: <c>allow-all</c>, or <c>custom</c> when any list is given) and the three lists.
    /// Lists together with <c>allow-all</c> or <c>deny-all</c> are refused: they would be silently meaningless.
    /// </summary>
    /// <param name="mode"><c>allow-all</c>, <c>deny-all</c>, <c>custom</c> or null.</param>
    /// <param name="allowedDomains">Domains (<c>example.com</c>, <c>*.example.com</c>).</param>
    /// <param name="allowedCidrs">Networks (<c>203.0.113.0/24</c>) or addresses.</param>
    /// <param name="deniedCidrs">Networks denied even when allowed otherwise.</param>
    /// <exception cref="VmsanException">INVALID_ARGUMENT, naming the bad value.</exception>
    public static EgressPolicy Create(string? mode, IEnumerable<string>? allowedDomains = null,
        IEnumerable<string>? allowedCidrs = null, IEnumerable<string>? deniedCidrs = null) =>
        PublicErrors.Run(() => new EgressPolicy(NetworkPolicy.Create(mode, allowedDomains, allowedCidrs, deniedCidrs)));

    /// <summary>
    /// This policy after a change: a new mode (<c>allow-all</c>/<c>deny-all</c> drop the lists), then entries added and
    /// removed. Adding to <c>allow-all</c> or <c>deny-all</c> makes the policy custom; removing an entry that is not
    /// there is an error (a typo would otherwise leave a destination open).
    /// </summary>
    /// <param name="mode">A new mode, or null to keep this one.</param>
    /// <param name="addDomains">Domains to allow.</param>
    /// <param name="removeDomains">Domains to stop allowing.</param>
    /// <param name="addAllowedCidrs">Networks to allow.</param>
    /// <param name="removeAllowedCidrs">Networks to stop allowing.</param>
    /// <param name="addDeniedCidrs">Networks to deny.</param>
    /// <param name="removeDeniedCidrs">Networks to stop denying.</param>
    /// <exception cref="VmsanException">INVALID_ARGUMENT, naming the bad value.</exception>
    public EgressPolicy Change(string? mode = null,
        IEnumerable<string>? addDomains = null, IEnumerable<string>? removeDomains = null,
        IEnumerable<string>? addAllowedCidrs = null, IEnumerable<string>? removeAllowedCidrs = null,
        IEnumerable<string>? addDeniedCidrs = null, IEnumerable<string>? removeDeniedCidrs = null) =>
        PublicErrors.Run(() => new EgressPolicy(Inner.Change(mode, addDomains, removeDomains, addAllowedCidrs, removeAllowedCidrs, addDeniedCidrs, removeDeniedCidrs)));

    /// <summary>The mode, with the lists when custom.</summary>
    public override string ToString() => Inner.ToString();
}
