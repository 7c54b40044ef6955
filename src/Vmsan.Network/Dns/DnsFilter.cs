using System.Net;
using System.Security.Cryptography;

namespace Vmsan.Network.Dns;

/// <summary>What the filter decided about a guest's query.</summary>
/// <param name="LocalReply">An answer to send back without asking upstream (refusals, NXDOMAIN), or null to forward.</param>
/// <param name="Upstream">The query to send upstream (rebuilt by us: question only), when forwarding.</param>
public sealed record QueryDecision(DnsMessage? Query, byte[]? LocalReply, DnsMessage? Upstream, string? Rule, string Action);

/// <summary>An upstream answer after filtering.</summary>
/// <param name="Pins">Addresses answered for the question, each with the TTL the upstream gave.</param>
/// <param name="Dropped">Addresses removed because they fall in the always-denied set (rebinding).</param>
public sealed record FilteredAnswer(DnsMessage Reply, IReadOnlyList<(IPAddress Address, uint Ttl)> Pins, IReadOnlyList<IPAddress> Dropped);

/// <summary>
/// The per-VM DNS policy, pure logic over messages (the server does the I/O). Names outside the
/// allowlist are answered here with NXDOMAIN and never forwarded, so nothing can be tunnelled out
/// through the upstream; the query sent upstream is rebuilt (question only, our own id), so no
/// guest-chosen bytes ride along in other sections.
/// </summary>
public sealed class DnsFilter
{
    /// <summary>The EDNS payload size we advertise and honour (the DNS flag day 2020 value).</summary>
    public const int EdnsPayload = 1232;
    public const int PlainUdpPayload = 512;

    private static readonly HashSet<ushort> StrippedSvcbKeys = [SvcbParams.Ech, SvcbParams.Ipv4Hint, SvcbParams.Ipv6Hint];

    private readonly Func<IPAddress, bool> _alwaysDenied;
    private volatile DnsPolicy _policy;

    /// <param name="alwaysDenied">Addresses no answer may point at (metadata, private ranges, the host itself).</param>
    public DnsFilter(DnsPolicy policy, Func<IPAddress, bool> alwaysDenied)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(alwaysDenied);
        _policy = policy;
        _alwaysDenied = alwaysDenied;
    }

    /// <summary>The policy in force; replaced atomically on a live change.</summary>
    public DnsPolicy Policy
    {
        get => _policy;
        set => _policy = value ?? throw new ArgumentNullException(nameof(value));
    }

    public QueryDecision Inspect(ReadOnlySpan<byte> wire)
    {
        DnsMessage q;
        try
        {
            q = DnsMessage.Parse(wire);
        }
        catch (DnsFormatException)
        {
            // With an id we can say FORMERR; without one there is no one to answer.
            if (wire.Length < 2)
                return new QueryDecision(null, null, null, null, "dropped");
            var reply = new DnsMessage { Id = (ushort)((wire[0] << 8) | wire[1]), Flags = 0x8000 | DnsRcode.FormErr };
            return new QueryDecision(null, reply.Encode(), null, null, "malformed");
        }
        if (q.IsResponse)
            return new QueryDecision(q, null, null, null, "dropped");
        if (q.Opcode != 0)
            return Local(q, DnsRcode.NotImp, "refused", "opcode");
        if (q.Questions.Count != 1)
            return Local(q, DnsRcode.FormErr, "refused", "question-count");
        var question = q.Questions[0];
        if (question.Class != 1)
            return Local(q, DnsRcode.Refused, "refused", "class");
        var rule = Policy.RuleFor(question.Name);
        if (rule is null)
            return Local(q, DnsRcode.NxDomain, "refused", "not-allowed");
        var up = new DnsMessage { Id = RandomId(), Flags = 0x0100 }; // RD
        up.Questions.Add(question);
        up.Additional.Add(Opt());
        return new QueryDecision(q, null, up, rule, "forwarded");
    }

    private static QueryDecision Local(DnsMessage q, int rcode, string action, string rule)
    {
        var reply = DnsMessage.ReplyTo(q, rcode);
        if (HasOpt(q))
            reply.Additional.Add(Opt());
        return new QueryDecision(q, reply.Encode(), null, rule, action);
    }

    /// <summary>True when <paramref name="upstreamReply"/> answers <paramref name="upstream"/> (id and question).</summary>
    public static bool Answers(DnsMessage upstream, DnsMessage upstreamReply)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(upstreamReply);
        if (!upstreamReply.IsResponse || upstreamReply.Id != upstream.Id || upstreamReply.Questions.Count != 1)
            return false;
        var a = upstream.Questions[0];
        var b = upstreamReply.Questions[0];
        return a.Type == b.Type && a.Class == b.Class && string.Equals(a.Name, b.Name, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The reply for the guest built from the upstream's answer: the guest's id and question, the
    /// answer records minus those pointing into the always-denied set, SVCB/HTTPS without ECH and
    /// address hints (clients then use the filtered, pinned A/AAAA), no additional records.
    /// </summary>
    public FilteredAnswer Filter(DnsMessage guestQuery, DnsMessage upstreamReply)
    {
        ArgumentNullException.ThrowIfNull(guestQuery);
        ArgumentNullException.ThrowIfNull(upstreamReply);
        var reply = new DnsMessage
        {
            Id = guestQuery.Id,
            // Upstream's flags (AA, TC, RA, AD, rcode) with the guest's RD and opcode.
            Flags = (ushort)((upstreamReply.Flags & ~0x7900) | (guestQuery.Flags & 0x7900) | 0x8000),
        };
        reply.Questions.AddRange(guestQuery.Questions);
        var pins = new List<(IPAddress, uint)>();
        var dropped = new List<IPAddress>();
        foreach (var r in upstreamReply.Answers)
        {
            if (Keep(r, dropped) is { } kept)
            {
                reply.Answers.Add(kept);
                if (AddressOf(kept) is { } ip)
                    pins.Add((ip, kept.Ttl));
            }
        }
        foreach (var r in upstreamReply.Authority)
        {
            // Authority carries SOA/NS for negative answers; addresses have no business there.
            if (r.Type is not (DnsType.A or DnsType.AAAA) && Keep(r, dropped) is { } kept)
                reply.Authority.Add(kept);
        }
        if (HasOpt(guestQuery))
            reply.Additional.Add(Opt());
        return new FilteredAnswer(reply, pins, dropped);
    }

    private DnsRecord? Keep(DnsRecord r, List<IPAddress> dropped)
    {
        switch (r.Type)
        {
            case DnsType.A or DnsType.AAAA:
                if (AddressOf(r) is not { } ip)
                    return null;
                if (_alwaysDenied(ip))
                {
                    dropped.Add(ip);
                    return null;
                }
                return r;
            case DnsType.SVCB or DnsType.HTTPS:
                return SvcbParams.Without(r.Data, StrippedSvcbKeys) is { } data ? r with { Data = data } : null;
            case DnsType.OPT:
                return null;
            default:
                return r;
        }
    }

    public static IPAddress? AddressOf(DnsRecord r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return (r.Type, r.Data.Length) switch
        {
            (DnsType.A, 4) or (DnsType.AAAA, 16) => new IPAddress(r.Data),
            _ => null,
        };
    }

    /// <summary>The largest reply the guest said it takes over UDP.</summary>
    public static int UdpLimit(DnsMessage query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var opt = query.Additional.FirstOrDefault(r => r.Type == DnsType.OPT);
        return opt is null ? PlainUdpPayload : Math.Clamp((int)opt.Class, PlainUdpPayload, EdnsPayload);
    }

    /// <summary>The same reply cut to header and question with TC set, so the guest retries over TCP.</summary>
    public static byte[] Truncated(DnsMessage reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var t = new DnsMessage { Id = reply.Id, Flags = (ushort)(reply.Flags | 0x0200) };
        t.Questions.AddRange(reply.Questions);
        return t.Encode();
    }

    private static bool HasOpt(DnsMessage m) => m.Additional.Any(r => r.Type == DnsType.OPT);

    private static DnsRecord Opt() => new("", DnsType.OPT, EdnsPayload, 0, []);

    private static ushort RandomId() => (ushort)RandomNumberGenerator.GetInt32(0, 0x10000);
}
