using Vmsan.Network.Policy;

namespace Vmsan.Network.Dns;

/// <summary>
/// Allowlist patterns, matched exactly as the policy defines them (<see cref="NetworkPolicy.DomainMatches"/>):
/// <c>example.com</c> matches that name only, <c>*.example.com</c> every name below it but not
/// <c>example.com</c> itself. Case-insensitive; a trailing dot is ignored.
/// </summary>
public static class DomainMatch
{
    public static bool Matches(string pattern, string name)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(name);
        return NetworkPolicy.DomainMatches(pattern.TrimEnd('.').ToLowerInvariant(), name);
    }

    /// <summary>The first pattern of <paramref name="patterns"/> that matches, or null.</summary>
    public static string? FirstMatch(IEnumerable<string> patterns, string name)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        foreach (var p in patterns)
            if (Matches(p, name))
                return p;
        return null;
    }
}
