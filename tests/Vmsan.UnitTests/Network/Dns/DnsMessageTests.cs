using CsCheck;
using Vmsan.Network.Dns;

namespace Vmsan.UnitTests.Network.Dns;

public sealed class DnsMessageTests
{
    [Fact]
    public void A_message_survives_encode_and_parse()
    {
        var q = DnsWire.Query("Www.Example.COM", DnsType.A, 77, edns: true);
        var a = DnsWire.Answer(q, DnsWire.Cname("Www.Example.COM", "cdn.example.net"), DnsWire.A("cdn.example.net", "192.0.2.7", 30));

        var back = DnsMessage.Parse(a.Encode());

        Assert.Equal(77, back.Id);
        Assert.True(back.IsResponse);
        Assert.Equal("Www.Example.COM", back.Questions[0].Name);
        Assert.Equal(2, back.Answers.Count);
        Assert.Equal("192.0.2.7", DnsFilter.AddressOf(back.Answers[1])!.ToString());
        Assert.Equal(30u, back.Answers[1].Ttl);
        Assert.Equal(a.Encode(), back.Encode());
    }

    [Fact]
    public void Compressed_names_are_expanded_in_owner_and_rdata()
    {
        // Header, question "a.test" at 12, answer CNAME with owner pointer to 12 and target "b" + pointer to "test".
        byte[] wire =
        [
            0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
            1, (byte)'a', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 0, 1, 0, 1,
            0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, (byte)'b', 0xC0, 14,
        ];

        var m = DnsMessage.Parse(wire);

        Assert.Equal("a.test", m.Answers[0].Name);
        var p = 0;
        Assert.Equal("b.test", DnsMessage.ReadName(m.Answers[0].Data, ref p));
    }

    [Fact]
    public void A_compression_loop_is_refused()
    {
        byte[] wire = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(wire));
    }

    [Fact]
    public void Names_with_odd_bytes_round_trip_escaped()
    {
        var q = DnsWire.Query("a\\046b.test");
        var back = DnsMessage.Parse(q.Encode());
        Assert.Equal("a\\046b.test", back.Questions[0].Name);
        Assert.Equal(3, back.Encode()[12]); // one label "a.b"
        Assert.Equal((byte)'.', back.Encode()[14]);
    }

    [Fact]
    public void Random_bytes_never_throw_anything_but_a_format_error()
    {
        Gen.Byte.Array[0, 600].Sample(bytes =>
        {
            try
            {
                var m = DnsMessage.Parse(bytes);
                // Whatever parses must encode and parse again to the same thing.
                var again = DnsMessage.Parse(m.Encode());
                Assert.Equal(m.Encode(), again.Encode());
            }
            catch (DnsFormatException)
            {
            }
        }, iter: 20000);
    }

    [Fact]
    public void Mutated_real_answers_never_throw_anything_but_a_format_error()
    {
        var q = DnsWire.Query("www.example.com", DnsType.HTTPS, edns: true);
        var seed = DnsWire.Answer(q, DnsWire.Cname("www.example.com", "x.example.net"), DnsWire.A("x.example.net", "192.0.2.1"),
            DnsWire.Https("x.example.net", (1, [2, (byte)'h', (byte)'2']), (5, [1, 2, 3]))).Encode();
        Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Byte, Gen.Int[0, seed.Length]).Array[1, 6].Sample(edits =>
        {
            var b = (byte[])seed.Clone();
            var len = b.Length;
            foreach (var (i, v, cut) in edits)
            {
                b[i] = v;
                len = Math.Min(len, Math.Max(cut, 12));
            }
            try
            {
                var m = DnsMessage.Parse(b.AsSpan(0, len));
                var filter = new DnsFilter(DnsPolicy.AllowAll, _ => false);
                _ = filter.Filter(q, m).Reply.Encode();
            }
            catch (DnsFormatException)
            {
            }
        }, iter: 20000);
    }
}
