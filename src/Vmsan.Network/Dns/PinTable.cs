using System.Net;

namespace Vmsan.Network.Dns;

/// <summary>Where pinned addresses go so the kernel redirects guest TCP to them into the proxy (nft sets pin4/pin6).</summary>
public interface IPinSink
{
    /// <summary>Adds (or refreshes, when <c>Replace</c>) each element with its timeout, in one transaction.</summary>
    Task AddAsync(IReadOnlyList<PinElement> elements, CancellationToken ct);
}

/// <param name="Replace">The kernel already holds the element (with an earlier expiry): delete it first, since nft's add leaves an existing element's timeout alone.</param>
public readonly record struct PinElement(IPAddress Address, TimeSpan Timeout, bool Replace);

/// <summary>
/// A VM's pins: for each allowlist pattern, the addresses DNS answered for names it matches, each
/// until its TTL (at least <see cref="Floor"/>, so a short TTL does not cut a long download) runs out.
/// The proxy asks it whether a name may reach an address. It also remembers what the kernel set
/// holds, so repeated lookups of a name cost no nft run.
/// </summary>
public sealed class PinTable
{
    public static readonly TimeSpan Floor = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan Ceiling = TimeSpan.FromDays(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Dictionary<IPAddress, DateTime>> _byRule = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<IPAddress, DateTime> _kernel = [];
    private readonly Func<DateTime> _now;

    public PinTable(Func<DateTime>? now = null) => _now = now ?? (() => DateTime.UtcNow);

    public static TimeSpan TimeoutFor(uint ttl) =>
        TimeSpan.FromSeconds(Math.Clamp((double)ttl, Floor.TotalSeconds, Ceiling.TotalSeconds));

    /// <summary>Records the addresses answered under <paramref name="rule"/>; returns the kernel set elements to add first.</summary>
    public IReadOnlyList<PinElement> Add(string rule, IEnumerable<(IPAddress Address, uint Ttl)> answers)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(answers);
        var now = _now();
        var toKernel = new List<PinElement>();
        lock (_lock)
        {
            if (!_byRule.TryGetValue(rule, out var pins))
                _byRule[rule] = pins = [];
            foreach (var (address, ttl) in answers)
            {
                var timeout = TimeoutFor(ttl);
                var until = now + timeout;
                if (!pins.TryGetValue(address, out var had) || had < until)
                    pins[address] = until;
                var inKernel = _kernel.TryGetValue(address, out var kernelUntil) && kernelUntil > now + TimeSpan.FromSeconds(2);
                // Refresh only when the kernel's element would run out before half the new timeout:
                // a name looked up again and again then costs no nft run.
                if (!inKernel || kernelUntil - now < timeout / 2)
                {
                    toKernel.Add(new PinElement(address, timeout, inKernel));
                    _kernel[address] = until;
                }
            }
        }
        return toKernel;
    }

    /// <summary>Forgets what the kernel holds for these elements (their nft run failed).</summary>
    public void KernelFailed(IEnumerable<PinElement> elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        lock (_lock)
            foreach (var e in elements)
                _kernel.Remove(e.Address);
    }

    /// <summary>True when <paramref name="address"/> is pinned for a pattern that matches <paramref name="name"/>.</summary>
    public bool Allows(string name, IPAddress address)
    {
        var now = _now();
        lock (_lock)
        {
            foreach (var (rule, pins) in _byRule)
                if (DomainMatch.Matches(rule, name) && pins.TryGetValue(address, out var until) && until > now)
                    return true;
        }
        return false;
    }

    /// <summary>The pattern whose pins hold <paramref name="address"/>, or null: what a connection that names nothing may reach.</summary>
    public string? AnyRuleFor(IPAddress address)
    {
        var now = _now();
        lock (_lock)
        {
            foreach (var (rule, pins) in _byRule)
                if (pins.TryGetValue(address, out var until) && until > now)
                    return rule;
        }
        return null;
    }

    /// <summary>
    /// After a policy change: keeps only the patterns still allowed. When the kernel sets were flushed
    /// (a domain was removed), returns every remaining pin to put back.
    /// </summary>
    public IReadOnlyList<PinElement> Retain(IReadOnlyCollection<string> rules, bool kernelFlushed)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var now = _now();
        lock (_lock)
        {
            foreach (var rule in _byRule.Keys.ToList())
                if (!rules.Contains(rule, StringComparer.OrdinalIgnoreCase))
                    _byRule.Remove(rule);
            if (!kernelFlushed)
                return [];
            _kernel.Clear();
            var back = new Dictionary<IPAddress, DateTime>();
            foreach (var pins in _byRule.Values)
                foreach (var (a, until) in pins)
                    if (until > now && (!back.TryGetValue(a, out var u) || u < until))
                        back[a] = until;
            foreach (var (a, until) in back)
                _kernel[a] = until;
            return [.. back.Select(kv => new PinElement(kv.Key, TimeSpan.FromSeconds(Math.Ceiling((kv.Value - now).TotalSeconds)), false))];
        }
    }
}
