using CsCheck;
using Vmsan.Network.Proxy;

namespace Vmsan.UnitTests.Network.Proxy;

public sealed class ClientHelloTests
{
    [Fact]
    public async Task The_server_name_of_a_real_client_hello_is_found()
    {
        var hello = await Hellos.RealAsync("Files.Allowed.Test");

        var r = ClientHello.Parse(hello);

        Assert.Equal(PeekStatus.Complete, r.Status);
        Assert.Equal("files.allowed.test", r.Name);
    }

    [Fact]
    public async Task A_partial_hello_needs_more_bytes()
    {
        var hello = await Hellos.RealAsync("a.test");
        for (var n = 1; n < hello.Length; n += 7)
            Assert.Equal(PeekStatus.NeedMore, ClientHello.Parse(hello.AsSpan(0, n)).Status);
    }

    [Fact]
    public void A_hello_split_over_many_records_is_reassembled()
    {
        var hello = Hellos.Build([(10, [0, 2, 0, 29]), Hellos.Sni("x.a.test"), (16, [0, 3, 2, (byte)'h', (byte)'2'])], recordSize: 7);
        Assert.Equal("x.a.test", ClientHello.Parse(hello).Name);
    }

    [Fact]
    public void Several_names_ech_or_a_non_host_name_are_refused()
    {
        Assert.Equal(PeekStatus.Invalid, ClientHello.Parse(Hellos.Build([Hellos.Sni("a.test", "b.test")])).Status);
        Assert.Equal(PeekStatus.Invalid, ClientHello.Parse(Hellos.Build([Hellos.Sni("a.test"), (0xfe0d, [1, 2, 3])])).Status);
        Assert.Equal(PeekStatus.Invalid, ClientHello.Parse(Hellos.Build([Hellos.Sni("a.test\0.evil.test")])).Status);
        Assert.Equal(PeekStatus.Invalid, ClientHello.Parse(Hellos.Build([Hellos.Sni("a.test"), Hellos.Sni("b.test")])).Status);
    }

    [Fact]
    public void A_hello_without_a_name_is_complete_with_no_name()
    {
        var r = ClientHello.Parse(Hellos.Build([(10, [0, 2, 0, 29])]));
        Assert.Equal(PeekStatus.Complete, r.Status);
        Assert.Null(r.Name);
    }

    [Fact]
    public void Other_protocols_are_not_tls()
    {
        Assert.Equal(PeekStatus.NotThisProtocol, ClientHello.Parse("SSH-2.0-OpenSSH_9.2\r\n"u8).Status);
        Assert.Equal(PeekStatus.NotThisProtocol, ClientHello.Parse("GET / HTTP/1.1\r\n"u8).Status);
    }

    // A leading letter: a numeric last label would be an IP literal, which is refused.
    private static readonly Gen<string> GenLabel = Gen.Select(Gen.Char["abcdefghijklmnopqrstuvwxyz"], Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-"], 0, 20], (c, s) => c + s);

    [Fact]
    public void Any_built_hello_gives_back_its_name_whatever_the_record_size()
    {
        Gen.Select(GenLabel.Array[1, 5], Gen.Int[1, 300], Gen.Bool).Sample((labels, recordSize, extFirst) =>
        {
            var name = string.Join('.', labels);
            (ushort, byte[]) other = (43, [2, 3, 4]);
            var hello = Hellos.Build(extFirst ? [other, Hellos.Sni(name)] : [Hellos.Sni(name), other], recordSize);
            var r = ClientHello.Parse(hello);
            Assert.Equal(PeekStatus.Complete, r.Status);
            Assert.Equal(name, r.Name);
        }, iter: 5000);
    }

    [Fact]
    public async Task Mutated_hellos_never_throw_and_never_name_what_they_do_not_carry()
    {
        var seed = await Hellos.RealAsync("www.allowed.test");
        Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Byte).Array[1, 8].Select(Gen.Int[5, seed.Length], (a, b) => (a, b)).Sample(t =>
        {
            var (edits, len) = t;
            var b = (byte[])seed.Clone();
            foreach (var (i, v) in edits)
                b[i] = v;
            var r = ClientHello.Parse(b.AsSpan(0, len));
            if (r.Name is not null)
                Assert.Matches("^[a-z0-9_.-]+$", r.Name);
        }, iter: 20000);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        Gen.Byte.Array[0, 400].Sample(b =>
        {
            if (b.Length > 0)
                b[0] = 0x16;
            if (b.Length > 1)
                b[1] = 3;
            _ = ClientHello.Parse(b);
        }, iter: 20000);
    }
}
