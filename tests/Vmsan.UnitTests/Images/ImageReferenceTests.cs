using CsCheck;
using Vmsan.Core.Errors;
using Vmsan.Images.Reference;

namespace Vmsan.UnitTests.Images;

public class ImageReferenceTests
{
    [Theory]
    [InlineData("node", "docker.io/library/node:latest")]
    [InlineData("node:22-alpine", "docker.io/library/node:22-alpine")]
    [InlineData("library/node:22", "docker.io/library/node:22")]
    [InlineData("docker.io/node", "docker.io/library/node:latest")]
    [InlineData("index.docker.io/library/node:1", "docker.io/library/node:1")]
    [InlineData("team/app", "docker.io/team/app:latest")]
    [InlineData("localhost/app", "localhost/app:latest")]
    [InlineData("localhost:5000/team/app:1.2", "localhost:5000/team/app:1.2")]
    [InlineData("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest")]
    [InlineData("ghcr.io/org/sub/app:v1", "ghcr.io/org/sub/app:v1")]
    [InlineData("Registry/app", "Registry/app:latest")]
    public void Names_are_normalised_like_docker(string input, string expected)
    {
        Assert.Equal(expected, ImageReference.Parse(input).ToString());
    }

    [Fact]
    public void A_digest_is_kept_and_becomes_the_manifest_reference()
    {
        var d = "sha256:" + new string('a', 64);
        var r = ImageReference.Parse($"ghcr.io/org/app@{d}");
        Assert.Equal(("ghcr.io", "org/app", null, d), (r.Registry, r.Repository, r.Tag, r.Digest));
        Assert.Equal(d, r.ManifestReference);
        var both = ImageReference.Parse($"localhost:5000/app:1@{d}");
        Assert.Equal(("localhost:5000", "1", d), (both.Registry, both.Tag, both.Digest));
    }

    [Fact]
    public void Docker_hub_is_spoken_to_on_its_api_host()
    {
        Assert.Equal("registry-1.docker.io", ImageReference.Parse("node").ApiHost);
        Assert.Equal("localhost:5000", ImageReference.Parse("localhost:5000/a").ApiHost);
    }

    [Theory]
    [InlineData("")]
    [InlineData("UPPER")]
    [InlineData("a b")]
    [InlineData("app@sha256:123")]
    [InlineData("app:")]
    [InlineData("app:-bad")]
    [InlineData("host:5000/")]
    [InlineData("app//x")]
    [InlineData("../etc/passwd")]
    [InlineData("ex..ample.com/app")]
    public void Malformed_references_are_refused_with_invalid_argument(string input)
    {
        var ex = Assert.Throws<VmsanException>(() => ImageReference.Parse(input));
        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
    }

    private static readonly Gen<string> Component =
        Gen.Select(Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"].Array[1, 6], Gen.OneOf("", ".", "_", "__", "-", "--"),
                Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"].Array[1, 6])
            .Select((a, sep, b) => sep.Length == 0 ? new string(a) : new string(a) + sep + new string(b));

    private static readonly Gen<string> Host = Gen.OneOf(
        Gen.Const(""),
        Gen.Const("localhost"),
        Gen.Select(Component.Where(c => !c.Contains('_', StringComparison.Ordinal) && !c.Contains('.', StringComparison.Ordinal) && !c.EndsWith('-')
                                        && !c.StartsWith('-')), Gen.Int[1, 65535])
            .Select((h, p) => $"{h}.example:{p}"),
        Gen.Const("ghcr.io"));

    private static readonly Gen<string> Ref =
        Gen.Select(Host, Component.Array[1, 3], Gen.OneOf(Gen.Const(""), Gen.Char["abcXYZ019_.-"].Array[1, 10].Select(c => ":v" + new string(c))),
                Gen.OneOf(Gen.Const(""), Gen.Char["0123456789abcdef"].Array[64, 64].Select(c => "@sha256:" + new string(c))))
            .Select((h, path, tag, digest) => (h.Length == 0 ? "" : h + "/") + string.Join('/', path) + tag + digest);

    [Fact]
    public void Normalising_is_idempotent_and_the_canonical_form_parses_to_the_same_reference()
    {
        Ref.Sample(text =>
        {
            var r = ImageReference.Parse(text);
            var again = ImageReference.Parse(r.ToString());
            Assert.Equal(r, again);
            Assert.Equal(r.ToString(), again.ToString());
            Assert.True(r.Tag is not null || r.Digest is not null);
        }, iter: 3000);
    }

    [Fact]
    public void A_short_name_always_lands_in_docker_hub_library()
    {
        Component.Sample(c =>
        {
            var r = ImageReference.Parse(c);
            Assert.Equal(("docker.io", "library/" + c, "latest"), (r.Registry, r.Repository, r.Tag));
        }, iter: 1000);
    }
}
