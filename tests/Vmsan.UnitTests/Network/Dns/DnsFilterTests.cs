using System.Net;
using Vmsan.Network.Dns;

namespace Vmsan.UnitTests.Network.Dns;

public sealed class DnsFilterTests
{
    private static bool Private(IPAddress a) => a.ToString().StartsWith("10.", StringComparison.Ordinal) || a.Equals(IPAddress.Parse("169.254.169.254"));

    private static readonly DnsFilter Custom = new(DnsPolicy.Domains("api.allowed.test", "*.wild.test"), Private);

    [Theory]
    [InlineData("api.allowed.test", true)]
    [InlineData("API.ALLOWED.TEST", true)]
    [InlineData("x.api.allowed.test", false)]
    [InlineData("allowed.test", false)]
    [InlineData("a.wild.test", true)]
    [InlineData("deep.a.WILD.test", true)]
    [InlineData("wild.test", false)]
    [InlineData("evilwild.test", false)]
    [InlineData("blocked.test", false)]
    public void Only_allowlisted_names_are_forwarded(string name, bool forwarded)
    {
        var d = Custom.Inspect(DnsWire.Query(name).Encode());

        if (forwarded)
        {
            Assert.Null(d.LocalReply);
            Assert.NotNull(d.Upstream);
        }
        else
        {
            Assert.Null(d.Upstream);
            var reply = DnsMessage.Parse(d.LocalReply);
            Assert.Equal(DnsRcode.NxDomain, reply.Rcode);
            Assert.Equal(0x1234, reply.Id);
            Assert.Equal(name, reply.Questions[0].Name);
            Assert.Empty(reply.Answers);
        }
    }

    [Fact]
    public void Deny_all_refuses_every_name_and_allow_all_forwards_every_name()
    {
        var deny = new DnsFilter(DnsPolicy.DenyAll, Private);
        var allow = new DnsFilter(DnsPolicy.AllowAll, Private);
        Assert.Null(deny.Inspect(DnsWire.Query("api.allowed.test").Encode()).Upstream);
        Assert.NotNull(allow.Inspect(DnsWire.Query("x.y.anything.example").Encode()).Upstream);
    }

    [Fact]
    public void The_upstream_query_is_rebuilt_from_the_question_alone()
    {
        var q = DnsWire.Query("api.allowed.test", DnsType.TXT);
        // Bytes a guest might try to smuggle: an extra authority record.
        q.Authority.Add(new DnsRecord("payload.blocked.test", DnsType.TXT, 1, 0, [5, (byte)'s', (byte)'e', (byte)'c', (byte)'r', (byte)'t']));

        var d = Custom.Inspect(q.Encode());

        Assert.NotNull(d.Upstream);
        Assert.Single(d.Upstream.Questions);
        Assert.Empty(d.Upstream.Answers);
        Assert.Empty(d.Upstream.Authority);
        Assert.All(d.Upstream.Additional, r => Assert.Equal(DnsType.OPT, r.Type));
        Assert.DoesNotContain("blocked", System.Text.Encoding.ASCII.GetString(d.Upstream.Encode()), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x8100)] // a response, not a query
    [InlineData(0x2900)] // opcode UPDATE
    public void Odd_messages_are_never_forwarded(int flags)
    {
        var q = DnsWire.Query("api.allowed.test");
        q.Flags = (ushort)flags;
        Assert.Null(Custom.Inspect(q.Encode()).Upstream);
    }

    [Fact]
    public void Garbage_gets_formerr_and_is_never_forwarded()
    {
        var d = Custom.Inspect([0xAB, 0xCD, 1, 2, 3]);
        Assert.Null(d.Upstream);
        Assert.Equal(DnsRcode.FormErr, DnsMessage.Parse(d.LocalReply).Rcode);
    }

    [Fact]
    public void Answers_into_the_always_denied_set_are_dropped_and_the_rest_pinned()
    {
        var q = DnsWire.Query("api.allowed.test", id: 9);
        var up = Custom.Inspect(q.Encode()).Upstream!;
        var answer = DnsWire.Answer(up, DnsWire.A("api.allowed.test", "10.1.2.3"), DnsWire.A("api.allowed.test", "169.254.169.254"),
            DnsWire.A("api.allowed.test", "198.51.100.5", 5));

        var f = Custom.Filter(q, answer);

        Assert.Equal(9, f.Reply.Id);
        Assert.Single(f.Reply.Answers);
        Assert.Equal(IPAddress.Parse("198.51.100.5"), DnsFilter.AddressOf(f.Reply.Answers[0]));
        Assert.Equal([(IPAddress.Parse("198.51.100.5"), 5u)], f.Pins);
        Assert.Equal(2, f.Dropped.Count);
    }

    [Fact]
    public void Ech_and_address_hints_are_stripped_from_https_answers()
    {
        var q = DnsWire.Query("api.allowed.test", DnsType.HTTPS);
        var up = Custom.Inspect(q.Encode()).Upstream!;
        var answer = DnsWire.Answer(up, DnsWire.Https("api.allowed.test", (1, [2, (byte)'h', (byte)'2']), (4, [10, 0, 0, 1]), (5, [0xAA, 0xBB])));

        var f = Custom.Filter(q, answer);

        var data = f.Reply.Answers.Single().Data;
        // priority(2) + root(1) + alpn only.
        Assert.Equal([0, 1, 0, 0, 1, 0, 3, 2, (byte)'h', (byte)'2'], data);
    }

    [Fact]
    public void An_https_record_that_makes_ech_mandatory_is_dropped()
    {
        var q = DnsWire.Query("api.allowed.test", DnsType.HTTPS);
        var up = Custom.Inspect(q.Encode()).Upstream!;
        var answer = DnsWire.Answer(up, DnsWire.Https("api.allowed.test", (0, [0, 5]), (5, [0xAA])));

        Assert.Empty(Custom.Filter(q, answer).Reply.Answers);
    }

    [Fact]
    public void An_answer_to_another_question_is_not_taken()
    {
        var up = Custom.Inspect(DnsWire.Query("api.allowed.test").Encode()).Upstream!;
        var other = DnsWire.Answer(DnsWire.Query("other.test", id: up.Id));
        Assert.False(DnsFilter.Answers(up, other));
        var wrongId = DnsWire.Answer(DnsWire.Query("API.allowed.test", id: (ushort)(up.Id + 1)));
        Assert.False(DnsFilter.Answers(up, wrongId));
        Assert.True(DnsFilter.Answers(up, DnsWire.Answer(DnsWire.Query("API.allowed.test", id: up.Id))));
    }

    [Fact]
    public void A_reply_too_big_for_udp_is_truncated_to_its_question()
    {
        var q = DnsWire.Query("api.allowed.test");
        var up = Custom.Inspect(q.Encode()).Upstream!;
        var many = Enumerable.Range(1, 60).Select(i => DnsWire.A("api.allowed.test", $"198.51.100.{i}")).ToArray();
        var f = Custom.Filter(q, DnsWire.Answer(up, many));
        Assert.True(f.Reply.Encode().Length > DnsFilter.UdpLimit(q));

        var t = DnsMessage.Parse(DnsFilter.Truncated(f.Reply));

        Assert.True(t.Truncated);
        Assert.Empty(t.Answers);
    }
}
