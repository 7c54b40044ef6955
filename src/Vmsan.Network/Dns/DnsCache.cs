namespace Vmsan.Network.Dns;

/// <summary>
/// Upstream answers kept for their TTL (at most <see cref="MaxTtl"/>; negative answers
/// <see cref="NegativeTtl"/>), keyed by lower-cased name and type. Only answers to names the policy
/// allowed are ever stored, and each hit goes through the filter again (current policy, rebinding
/// drop, pins), so a cached answer can never say more than a fresh one.
/// </summary>
public sealed class DnsCache(Func<DateTime>? now = null)
{
    public const int MaxEntries = 4096;
    public static readonly TimeSpan MaxTtl = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan NegativeTtl = TimeSpan.FromSeconds(30);

    private readonly Func<DateTime> _now = now ?? (() => DateTime.UtcNow);
    private readonly Lock _lock = new();
    private readonly Dictionary<(string, ushort), (DnsMessage Reply, DateTime At, DateTime Until)> _entries = [];

    public void Put(DnsQuestion q, DnsMessage reply)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(reply);
        if (reply.Truncated || reply.Rcode is not (DnsRcode.NoError or DnsRcode.NxDomain))
            return;
        var records = reply.Answers.Concat(reply.Authority).Where(r => r.Type != DnsType.OPT).ToList();
        var ttl = records.Count == 0 || reply.Answers.Count == 0
            ? NegativeTtl
            : TimeSpan.FromSeconds(Math.Min(records.Min(r => r.Ttl), MaxTtl.TotalSeconds));
        if (ttl <= TimeSpan.Zero)
            return;
        var at = _now();
        lock (_lock)
        {
            if (_entries.Count >= MaxEntries)
            {
                foreach (var k in _entries.Where(e => e.Value.Until <= at).Select(e => e.Key).ToList())
                    _entries.Remove(k);
                if (_entries.Count >= MaxEntries)
                    _entries.Clear();
            }
            _entries[(q.Name.ToLowerInvariant(), q.Type)] = (reply, at, at + ttl);
        }
    }

    /// <summary>The stored answer with its TTLs lowered by the time it has been kept, or null.</summary>
    public DnsMessage? Get(DnsQuestion q)
    {
        ArgumentNullException.ThrowIfNull(q);
        var now = _now();
        (DnsMessage Reply, DateTime At, DateTime Until) e;
        lock (_lock)
        {
            if (!_entries.TryGetValue((q.Name.ToLowerInvariant(), q.Type), out e))
                return null;
            if (e.Until <= now)
            {
                _entries.Remove((q.Name.ToLowerInvariant(), q.Type));
                return null;
            }
        }
        var age = (uint)(now - e.At).TotalSeconds;
        var m = new DnsMessage { Id = e.Reply.Id, Flags = e.Reply.Flags };
        m.Questions.AddRange(e.Reply.Questions);
        m.Answers.AddRange(e.Reply.Answers.Select(r => r with { Ttl = r.Ttl > age ? r.Ttl - age : 0 }));
        m.Authority.AddRange(e.Reply.Authority.Select(r => r with { Ttl = r.Ttl > age ? r.Ttl - age : 0 }));
        return m;
    }

    public void Clear()
    {
        lock (_lock)
            _entries.Clear();
    }
}
