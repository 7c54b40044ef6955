using Vmsan.Core.Errors;
using Vmsan.Images;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;
using static Vmsan.UnitTests.Images.TestImages;

namespace Vmsan.UnitTests.Images;

public sealed class RegistryPullTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-images-").FullName;
    private readonly FakeRegistry _reg = new();

    public void Dispose() => Directory.Delete(_dir, true);

    private ImageService Service(RegistryCredential? cred = null) => new(_dir, registryFactory: o => new RegistryClient(new RegistryClientOptions
    {
        Handler = _reg,
        InsecureRegistries = new HashSet<string> { "*" },
        Credentials = new RegistryCredentials(o.Credential ?? cred, "/nonexistent"),
        RetryBaseDelay = TimeSpan.FromMilliseconds(5),
    }));

    private static Layer GzLayer(string file, string content) => new(Gzip(Tar(w => w.File(file, content))), MediaTypes.OciLayerGzip);

    private Task<Vmsan.Images.Cache.ImageRecord> Pull(string tag = "1", PullOptions? o = null, RegistryCredential? cred = null) =>
        Service(cred).PullAsync($"reg.test:5000/team/app:{tag}", o ?? new PullOptions(), null, TestContext.Current.CancellationToken);

    private string[] CacheFiles() =>
        Directory.Exists(Path.Combine(_dir, "blobs")) ? Directory.GetFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories) : [];

    [Fact]
    public async Task An_anonymous_pull_stores_every_blob_under_its_digest_and_records_the_name()
    {
        var l1 = GzLayer("a", "one");
        var l2 = new Layer(Zstd(Tar(w => w.File("b", "two"))), MediaTypes.OciLayerZstd);
        var manifest = Publish(_reg, "1", Config(extra: "\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\",\"User\":\"1000\",\"Cmd\":[\"sh\"],\"ExposedPorts\":{\"80/tcp\":{}}"), l1, l2);
        var rec = await Pull();
        Assert.Equal("reg.test:5000/team/app:1", rec.Name);
        Assert.Equal(Digests.Of(manifest), rec.ManifestDigest);
        Assert.Equal(["A=1"], rec.Config.Env!);
        Assert.Equal(("/w", "1000"), (rec.Config.WorkingDir, rec.Config.User));
        Assert.Equal(["80/tcp"], rec.Config.ExposedPorts!);
        foreach (var d in new[] { l1.Digest, l2.Digest, rec.ConfigDigest, rec.ManifestDigest })
            Assert.True(File.Exists(Path.Combine(_dir, "blobs", "sha256", d[7..])), d);
        Assert.Single(Service().List());
    }

    [Fact]
    public async Task A_second_pull_downloads_no_blob_again()
    {
        var l1 = GzLayer("a", "one");
        Publish(_reg, "1", Config(), l1);
        await Pull();
        await Pull();
        Assert.Equal(1, _reg.BlobGets[l1.Digest]);
    }

    [Fact]
    public async Task Concurrent_pulls_of_one_image_download_each_blob_once()
    {
        var l1 = GzLayer("a", new string('x', 100_000));
        Publish(_reg, "1", Config(), l1);
        _reg.BlobDelay = TimeSpan.FromMilliseconds(100);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Pull()));
        Assert.Equal(1, _reg.BlobGets[l1.Digest]);
    }

    [Fact]
    public async Task Bearer_challenge_gets_a_token_from_the_realm_and_retries()
    {
        _reg.Bearer = true;
        Publish(_reg, "1", Config(), GzLayer("a", "1"));
        await Pull();
        Assert.Contains(_reg.Log, l => l.StartsWith("GET /token?service=fake&scope=repository", StringComparison.Ordinal));
        Assert.Equal(1, _reg.Tokens); // one token for the whole pull
    }

    [Fact]
    public async Task Bearer_token_service_with_wrong_credentials_is_registry_auth_failed()
    {
        _reg.Bearer = true;
        _reg.BasicUser = "alice";
        _reg.BasicPassword = "right";
        Publish(_reg, "1", Config(), GzLayer("a", "1"));
        await Pull(cred: new RegistryCredential("alice", "right"));
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull(cred: new RegistryCredential("alice", "wrong")));
        Assert.Equal(ErrorCode.RegistryAuthFailed, ex.Code);
    }

    [Fact]
    public async Task Basic_auth_uses_the_credentials_and_refuses_without_them()
    {
        _reg.BasicUser = "bob";
        _reg.BasicPassword = "pw";
        Publish(_reg, "1", Config(), GzLayer("a", "1"));
        var none = await Assert.ThrowsAsync<VmsanException>(() => Pull());
        Assert.Equal(ErrorCode.RegistryAuthFailed, none.Code);
        var wrong = await Assert.ThrowsAsync<VmsanException>(() => Pull(cred: new RegistryCredential("bob", "nope")));
        Assert.Equal(ErrorCode.RegistryAuthFailed, wrong.Code);
        await Pull(cred: new RegistryCredential("bob", "pw"));
    }

    [Fact]
    public void Docker_config_auths_are_read_by_registry_host()
    {
        var cfg = Path.Combine(_dir, "config.json");
        File.WriteAllText(cfg, "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" + Convert.ToBase64String("hub:pw1"u8.ToArray())
                               + "\"},\"localhost:5000\":{\"auth\":\"" + Convert.ToBase64String("me:p:w"u8.ToArray()) + "\"}}}");
        var c = new RegistryCredentials(null, cfg);
        Assert.Equal(new RegistryCredential("hub", "pw1"), c.For("docker.io"));
        Assert.Equal(new RegistryCredential("me", "p:w"), c.For("localhost:5000"));
        Assert.Null(c.For("ghcr.io"));
    }

    [Fact]
    public async Task Server_errors_and_rate_limits_are_retried_with_backoff()
    {
        Publish(_reg, "1", Config(), GzLayer("a", "1"));
        _reg.FailFirst503 = 2;
        _reg.Fail429 = 1;
        await Pull();
    }

    [Fact]
    public async Task An_unknown_tag_is_image_not_found_and_leaves_no_blob()
    {
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull("nope"));
        Assert.Equal(ErrorCode.ImageNotFound, ex.Code);
        Assert.Contains("MANIFEST_UNKNOWN", ex.Message, StringComparison.Ordinal);
        Assert.Empty(CacheFiles());
    }

    [Fact]
    public async Task An_index_resolves_to_the_manifest_of_the_platform()
    {
        var amd = Manifest(Config(), [GzLayer("amd", "x")]);
        var arm = Manifest(Config(arch: "arm64"), [GzLayer("arm", "y")]);
        var amdLayer = GzLayer("amd", "x");
        _reg.Blobs[amdLayer.Digest] = amdLayer.Blob;
        _reg.Blobs[Digests.Of(Config())] = Config();
        _reg.Manifests[Digests.Of(amd)] = (MediaTypes.OciManifest, amd);
        _reg.Manifests[Digests.Of(arm)] = (MediaTypes.OciManifest, arm);
        _reg.Manifests["multi"] = (MediaTypes.OciIndex, Index((arm, "linux/arm64"), (amd, "linux/amd64")));
        var rec = await Pull("multi");
        Assert.Equal(Digests.Of(amd), rec.ManifestDigest);
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull("multi", new PullOptions { Platform = Manifests.ParsePlatform("linux/s390x") }));
        Assert.Equal(ErrorCode.PlatformNotFound, ex.Code);
        Assert.Contains("linux/arm64, linux/amd64", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_single_manifest_for_another_platform_is_platform_not_found()
    {
        Publish(_reg, "1", Config(arch: "arm64"), GzLayer("a", "1"));
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull());
        Assert.Equal(ErrorCode.PlatformNotFound, ex.Code);
    }

    [Fact]
    public async Task A_blob_whose_content_does_not_match_its_digest_is_digest_mismatch_and_nothing_is_kept()
    {
        var l1 = GzLayer("a", "good!");
        Publish(_reg, "1", Config(), l1);
        var bad = (byte[])l1.Blob.Clone();
        bad[^5] ^= 0xff;
        _reg.CorruptBlob[l1.Digest] = bad;
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull());
        Assert.Equal(ErrorCode.DigestMismatch, ex.Code);
        Assert.DoesNotContain(CacheFiles(), f => f.Contains(l1.Digest[7..], StringComparison.Ordinal));
        Assert.Empty(Service().List());
    }

    [Fact]
    public async Task A_truncated_blob_is_bad_image_and_nothing_is_kept()
    {
        var l1 = GzLayer("a", new string('q', 5000));
        Publish(_reg, "1", Config(), l1);
        _reg.TruncateTo[l1.Digest] = l1.Blob.Length / 2;
        var ex = await Assert.ThrowsAsync<VmsanException>(() => Pull());
        Assert.Equal(ErrorCode.BadImage, ex.Code);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(CacheFiles(), f => f.Contains(l1.Digest[7..], StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stream_broken_mid_blob_resumes_with_a_range_request()
    {
        var l1 = new Layer(Tar(w => w.File("big", new string('z', 300_000))), MediaTypes.OciLayer);
        Publish(_reg, "1", Config(), l1);
        _reg.BreakAfter[l1.Digest] = 100_000;
        await Pull();
        Assert.Equal(2, _reg.BlobGets[l1.Digest]);
        Assert.Equal(l1.Blob, File.ReadAllBytes(Path.Combine(_dir, "blobs", "sha256", l1.Digest[7..])));
    }

    [Fact]
    public async Task A_pinned_digest_that_the_registry_does_not_serve_is_digest_mismatch()
    {
        var manifest = Publish(_reg, "1", Config(), GzLayer("a", "1"));
        var other = "sha256:" + new string('0', 64);
        _reg.Manifests[other] = (MediaTypes.OciManifest, manifest);
        var ex = await Assert.ThrowsAsync<VmsanException>(() =>
            Service().PullAsync($"reg.test:5000/team/app@{other}", new PullOptions(), null, TestContext.Current.CancellationToken));
        Assert.Equal(ErrorCode.DigestMismatch, ex.Code);
    }

    [Fact]
    public async Task A_closed_port_is_registry_unreachable_at_once()
    {
        var svc = new ImageService(_dir);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<VmsanException>(() =>
            svc.PullAsync("127.0.0.1:9/app:1", new PullOptions { InsecureRegistry = true }, null, TestContext.Current.CancellationToken));
        Assert.Equal(ErrorCode.RegistryUnreachable, ex.Code);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), sw.Elapsed.ToString());
        Assert.Empty(CacheFiles());
    }
}
