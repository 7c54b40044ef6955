using System.Diagnostics;
using System.Formats.Tar;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests.Images;

/// <summary>
/// --from-image and `vmsan images` against a real registry (Debian's docker-registry on the loopback of
/// the test's own namespace) holding images the test builds by hand: a multi-platform index whose amd64
/// image is a static busybox with no init over three layers (gzip, zstd with whiteouts, a hard link and
/// a symlink, plain with an opaque directory) and a config setting Env, WorkingDir, User, Entrypoint, Cmd
/// and ExposedPorts; archives and layouts of it; pulls by digest with a platform; the pull's terminal display;
/// concurrent pulls; and every error with a clean cache. Three VM boots (the create from the index's digest, the
/// oci-archive run, the musl run).
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class ImageRegistryTests(ImageRegistryTests.Fixture f) : IClassFixture<ImageRegistryTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Dir { get; } = Path.Combine(Path.GetTempPath(), "vmsan-img-" + Sh.Rand());
        public OciLayout Layout { get; private set; } = null!;
        public TestRegistry Registry { get; private set; } = null!;
        public TestRegistry AuthRegistry { get; private set; } = null!;
        public TokenService Tokens { get; private set; } = null!;
        public TestRegistry TokenRegistry { get; private set; } = null!;
        public Blob AppManifest { get; private set; } = null!;
        public Blob CorruptLayer { get; private set; } = null!;
        public Blob BigLayer { get; private set; } = null!;
        public Blob ConcManifest { get; private set; } = null!;
        public Blob ConcLayer { get; private set; } = null!;
        public Blob Index { get; private set; } = null!;
        public Blob ArmManifest { get; private set; } = null!;
        public Blob BarsManifest { get; private set; } = null!;
        public Blob[] BarsLayers { get; private set; } = [];
        public string Vm { get; set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Layout = new OciLayout(Path.Combine(Dir, "layout"));
            var l1 = Layout.Layer([
                .. OciLayout.Busybox(),
                FixtureEntry.Dir("data"), FixtureEntry.File("data/keep", "kept\n"), FixtureEntry.File("data/gone", "whited out\n"),
                FixtureEntry.Dir("opq"), FixtureEntry.File("opq/old", "old\n"), FixtureEntry.Dir("opq/sub"), FixtureEntry.File("opq/sub/old2", "old\n"),
            ], LayerKind.Gzip);
            var l2 = Layout.Layer([
                FixtureEntry.Dir("data"), FixtureEntry.File("data/.wh.gone", ""), FixtureEntry.Hardlink("data/hard", "data/keep"),
                FixtureEntry.Symlink("data/link", "keep"), FixtureEntry.File("zstd.txt", "from a zstd layer\n"),
                FixtureEntry.Dir("home"), new FixtureEntry("home/app", TarEntryType.Directory, Mode: (UnixFileMode)0x1ED, Uid: 1000, Gid: 1000),
                FixtureEntry.File("home/app/owned", "mine\n", 1000, 1000, (UnixFileMode)0x1E4),
            ], LayerKind.Zstd);
            var l3 = Layout.Layer([
                FixtureEntry.Dir("opq"), FixtureEntry.File("opq/.wh..wh..opq", ""), FixtureEntry.File("opq/new", "new\n"),
                FixtureEntry.Dir("work"), FixtureEntry.File("plain.txt", "from a plain layer\n"),
            ], LayerKind.Plain);
            var config = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/bin", "FOO=bar"),
                ["WorkingDir"] = "/work",
                ["User"] = "app",
                ["Entrypoint"] = new JsonArray("/bin/sh", "-c"),
                ["Cmd"] = new JsonArray("echo entry; id -un; pwd; echo $FOO"),
                ["ExposedPorts"] = new JsonObject { ["8080/tcp"] = new JsonObject() },
            };
            AppManifest = Layout.Image("amd64", config, l1, l2, l3);
            ArmManifest = Layout.Image("arm64", null, Layout.Layer([FixtureEntry.File("arm", "arm\n")], LayerKind.Gzip));
            Layout.Tag(AppManifest, "app");
            Index = Layout.MultiPlatform((AppManifest, "amd64"), (ArmManifest, "arm64"));
            Layout.Tag(Index, "multi");
            // A gzip layer cut short, with a digest of the cut bytes: it downloads fine and fails to unpack.
            Layout.Tag(Layout.Image("amd64", null, Layout.Layer(OciLayout.Busybox(), LayerKind.Gzip, b => b[..(b.Length / 2)])), "trunc");
            var corrupt = Layout.Layer([FixtureEntry.File("c", "to be corrupted " + Guid.NewGuid() + "\n")], LayerKind.Gzip);
            CorruptLayer = corrupt.Blob;
            Layout.Tag(Layout.Image("amd64", null, corrupt), "corrupt");
            var big = Layout.Layer([new FixtureEntry("big.bin", Content: System.Security.Cryptography.RandomNumberGenerator.GetBytes(24 << 20))], LayerKind.Plain);
            BigLayer = big.Blob;
            Layout.Tag(Layout.Image("amd64", null, big), "big");

            Layout.Tag(Layout.Image("amd64", new JsonObject { ["Entrypoint"] = new JsonArray("/bin/hello"), ["Env"] = new JsonArray("PATH=/bin") },
                Layout.Layer(await OciLayout.MuslHello(Dir), LayerKind.Gzip)), "musl");
            var conc = Layout.Layer([new FixtureEntry("conc.bin", Content: System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20))], LayerKind.Plain);
            ConcLayer = conc.Blob;
            ConcManifest = Layout.Image("amd64", null, conc);
            Layout.Tag(ConcManifest, "conc");
            // Three layers of 1, 2 and 3 MiB that no other image shares, for the progress display.
            var bars = Enumerable.Range(1, 3)
                .Select(i => Layout.Layer([new FixtureEntry($"bars{i}.bin", Content: System.Security.Cryptography.RandomNumberGenerator.GetBytes(i << 20))], LayerKind.Plain))
                .ToArray();
            BarsLayers = [.. bars.Select(b => b.Blob)];
            BarsManifest = Layout.Image("amd64", null, bars);
            Layout.Tag(BarsManifest, "bars");

            Registry = await TestRegistry.StartAsync(World.HostNs, Path.Combine(Dir, "registry"));
            await Registry.PushAsync(Layout, "multi", "team/app", all: true);
            await Registry.PushAsync(Layout, "app", "team/app");
            await Registry.PushAsync(Layout, "corrupt", "team/corrupt");
            await Registry.PushAsync(Layout, "big", "team/big");
            await Registry.PushAsync(Layout, "conc", "team/conc");
            await Registry.PushAsync(Layout, "bars", "team/bars");
            // Same length, other bytes: the registry serves them under the old digest.
            var data = Registry.BlobData(CorruptLayer.Digest);
            var bytes = await File.ReadAllBytesAsync(data);
            bytes[^10] ^= 0xff;
            await File.WriteAllBytesAsync(data, bytes);

            var htpasswd = Path.Combine(Dir, "htpasswd");
            await Sh.Check($"htpasswd -Bbn tester s3cret > {htpasswd}");
            AuthRegistry = await TestRegistry.StartAsync(World.HostNs, Path.Combine(Dir, "auth-registry"), $"""
                auth:
                  htpasswd:
                    realm: vmsan-test
                    path: {htpasswd}
                """);
            await AuthRegistry.PushAsync(Layout, "app", "private/app", creds: "tester:s3cret");

            Tokens = await TokenService.StartAsync(World.HostNs);
            var cert = Path.Combine(Dir, "token-cert.pem");
            File.WriteAllText(cert, Tokens.CertificatePem);
            TokenRegistry = await TestRegistry.StartAsync(World.HostNs, Path.Combine(Dir, "token-registry"), Tokens.AuthYaml(cert));
            await TokenRegistry.PushAsync(Layout, "app", "tok/app");
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await World.DisposeAsync();
            }
            finally
            {
                if (Registry is not null)
                    await Registry.DisposeAsync();
                if (AuthRegistry is not null)
                    await AuthRegistry.DisposeAsync();
                if (TokenRegistry is not null)
                    await TokenRegistry.DisposeAsync();
                if (Tokens is not null)
                    await Tokens.DisposeAsync();
                try
                {
                    Directory.Delete(Dir, true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private VmsanWorld W => f.World;
    private string Reg => f.Registry.Host;
    private string ImagesDir => Path.Combine(W.Home, "images");

    private string[] VmDirs() => Directory.Exists(Path.Combine(W.Home, "vms")) ? Directory.GetDirectories(Path.Combine(W.Home, "vms")) : [];

    private IEnumerable<string> CacheFiles(string sub) =>
        Directory.Exists(Path.Combine(ImagesDir, sub)) ? Directory.EnumerateFileSystemEntries(Path.Combine(ImagesDir, sub), "*", SearchOption.AllDirectories) : [];

    private async Task<JsonElement> Fails(string code, params string[] args)
    {
        var r = await W.Vmsan([.. args, "--json"]);
        Assert.True(r.ExitCode == 1, r.ToString());
        var error = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error");
        Assert.True(error.GetProperty("code").GetString() == code, r.ToString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("fix").GetString()));
        return error;
    }

    private async Task<string> Exec(string script, params string[] flags)
    {
        var r = await W.Vmsan(["exec", .. flags, f.Vm, "sh", "-c", script]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    [Fact]
    public async Task Pull_from_a_registry_selects_amd64_from_the_index_and_lists_the_image_with_its_config()
    {
        var pulled = await W.VmsanJson("images", "pull", $"{Reg}/team/app:multi", "--insecure-registry");
        Assert.Equal(f.AppManifest.Digest, pulled.GetProperty("manifestDigest").GetString());
        Assert.Equal("linux/amd64", pulled.GetProperty("platform").GetString());
        Assert.Equal(3, pulled.GetProperty("layers").GetInt32());
        Assert.Equal("8080/tcp", pulled.GetProperty("config").GetProperty("exposedPorts")[0].GetString());
        var list = await W.VmsanJson("images");
        Assert.Contains(list.EnumerateArray(), i => i.GetProperty("name").GetString() == $"{Reg}/team/app:multi");
        Assert.DoesNotContain(CacheFiles("blobs"), p => p.EndsWith(".partial", StringComparison.Ordinal));
        var human = await W.Vmsan("images");
        Assert.Contains("8080/tcp", human.Stdout);
    }

    [Fact]
    public async Task Pull_by_index_digest_selects_the_manifest_of_the_platform_asked_for()
    {
        var byDigest = $"{Reg}/team/app@{f.Index.Digest}";
        var amd = await W.VmsanJson("images", "pull", byDigest, "--insecure-registry", "--platform", "linux/amd64");
        Assert.Equal(f.AppManifest.Digest, amd.GetProperty("manifestDigest").GetString());
        Assert.Equal("linux/amd64", amd.GetProperty("platform").GetString());
        Assert.Equal(3, amd.GetProperty("layers").GetInt32());
        var listed = await FindImage(byDigest) ?? throw new InvalidOperationException($"{byDigest} is not listed");
        Assert.Equal(f.AppManifest.Digest, listed.GetProperty("manifestDigest").GetString());
        Assert.Equal("/work", listed.GetProperty("config").GetProperty("workingDir").GetString());
        Assert.Equal("app", listed.GetProperty("config").GetProperty("user").GetString());

        // The same index, the other entry: its own manifest and its (empty) config replace the name's record.
        var arm = await W.VmsanJson("images", "pull", byDigest, "--insecure-registry", "--platform", "linux/arm64");
        Assert.Equal(f.ArmManifest.Digest, arm.GetProperty("manifestDigest").GetString());
        Assert.Equal(1, arm.GetProperty("layers").GetInt32());
        listed = await FindImage(byDigest) ?? throw new InvalidOperationException($"{byDigest} is not listed");
        Assert.Equal(f.ArmManifest.Digest, listed.GetProperty("manifestDigest").GetString());
        Assert.Equal("linux/arm64", listed.GetProperty("platform").GetString());
        Assert.False(listed.GetProperty("config").TryGetProperty("workingDir", out var wd) && wd.ValueKind == JsonValueKind.String, listed.ToString());

        // A manifest's own digest: no index to choose from, and its config says amd64.
        var direct = await W.VmsanJson("images", "pull", $"{Reg}/team/app@{f.AppManifest.Digest}", "--insecure-registry");
        Assert.Equal(f.AppManifest.Digest, direct.GetProperty("manifestDigest").GetString());
        await Fails("PLATFORM_NOT_FOUND", "images", "pull", $"{Reg}/team/app@{f.AppManifest.Digest}", "--insecure-registry", "--platform", "linux/arm64");

        // run takes --platform as create and images pull do, and hands it to the pull before anything boots (no entry
        // has that variant). An entry of another architecture is pulled by `images pull` only: create and run refuse it
        // before pulling (the guest's kernel and agent are amd64; its programs could never run): even for a tag the
        // registry lacks, so no request was made.
        var vmsBefore = VmDirs();
        var refsBefore = CacheFiles("refs").ToList();
        var blobsBefore = CacheFiles("blobs").ToList();
        var e = await Fails("PLATFORM_NOT_FOUND", "run", "--rm", "--memory", "256", "--from-image", byDigest, "--insecure-registry", "--platform", "linux/amd64/v9");
        Assert.Contains("linux/arm64", e.GetProperty("message").GetString());
        var arch = await Fails("INVALID_ARGUMENT", "create", "--memory", "256", "--from-image", $"{Reg}/team/app:arm-only", "--insecure-registry", "--platform", "linux/arm64");
        Assert.Contains("linux/arm64", arch.GetProperty("message").GetString());
        await Fails("INVALID_ARGUMENT", "run", "--rm", "--memory", "256", "--from-image", byDigest, "--insecure-registry", "--platform", "linux/arm64");
        Assert.Equal(refsBefore, CacheFiles("refs").ToList());

        // A digest the registry does not hold: not found, and nothing kept.
        var missing = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await Fails("IMAGE_NOT_FOUND", "images", "pull", $"{Reg}/team/app@{missing}", "--insecure-registry", "--platform", "linux/amd64");
        await Fails("IMAGE_NOT_FOUND", "create", "--memory", "256", "--from-image", $"{Reg}/team/app@{missing}", "--insecure-registry", "--platform", "linux/amd64");
        Assert.Equal(refsBefore, CacheFiles("refs").ToList());
        Assert.Equal(blobsBefore, CacheFiles("blobs").ToList());
        Assert.Empty(CacheFiles("tmp"));
        Assert.Equal(vmsBefore, VmDirs());
    }

    [Fact]
    public async Task A_busybox_image_with_no_init_boots_with_its_layers_applied_and_its_config_as_exec_defaults()
    {
        // By the index's digest with a platform, as `--from-image ghcr.io/org/app@sha256:… --platform linux/amd64`; the
        // name's cached record is the arm64 entry's (previous test), so this pulls the amd64 manifest again (its blobs are cached).
        var byDigest = $"{Reg}/team/app@{f.Index.Digest}";
        var vm = await W.VmsanJson("create", "--memory", "256", "--from-image", byDigest, "--insecure-registry", "--platform", "linux/amd64");
        f.Vm = vm.GetProperty("id").GetString()!;
        Assert.Equal("image", vm.GetProperty("runtime").GetString());
        Assert.Equal(f.AppManifest.Digest, vm.GetProperty("image").GetProperty("manifestDigest").GetString());
        Assert.Equal("8080/tcp", vm.GetProperty("image").GetProperty("exposedPorts")[0].GetString());
        // The agent is PID 1: the image has no init.
        Assert.Equal("vmsan-agent", (await Exec("cat /proc/1/comm")).Trim());
        Assert.Equal("app\n/work\nbar\n", await Exec("id -un; pwd; echo $FOO"));
        Assert.Equal("root\n/\nbaz\n", await Exec("id -un; pwd; echo $FOO", "--user", "root", "-w", "/", "-e", "FOO=baz"));
        var files = await Exec("""
            test -e /data/gone && echo gone-still-there
            cat /data/keep /zstd.txt /plain.txt /opq/new
            ls /opq
            stat -c '%h' /data/keep
            readlink /data/link
            stat -c '%u:%g %a' /home/app/owned
            """);
        Assert.Equal("kept\nfrom a zstd layer\nfrom a plain layer\nnew\nnew\n2\nkeep\n1000:1000 744\n", files);
        var get = await W.VmsanJson("get", f.Vm);
        Assert.Equal(byDigest, get.GetProperty("image").GetProperty("name").GetString());
        Assert.Equal("linux/amd64", (await FindImage(byDigest))?.GetProperty("platform").GetString());
    }

    [Fact]
    public async Task Run_with_no_command_runs_the_entrypoint_from_an_oci_archive_without_converting_again()
    {
        var archive = Path.Combine(f.Dir, "app-oci.tar");
        await Sh.Check($"tar -C {f.Layout.Dir} -cf {archive} .");
        var rootfsBefore = Directory.GetDirectories(Path.Combine(ImagesDir, "rootfs"));
        var r = await W.Vmsan("run", "--rm", "--memory", "256", "--from-image", $"oci-archive:{archive}:multi");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("entry\napp\n/work\nbar\n", r.Stdout);
        // Same manifest as the registry's: its ext4 root was built by the previous create.
        Assert.DoesNotContain("mkfs.ext4", r.Stderr);
        Assert.Equal(rootfsBefore, Directory.GetDirectories(Path.Combine(ImagesDir, "rootfs")));
        Assert.Empty(CacheFiles("tmp"));
    }

    [Fact]
    public async Task Docker_archives_and_oci_layouts_are_read_as_images()
    {
        // docker save's layout: manifest.json naming a config and layer tars.
        var dir = Path.Combine(f.Dir, "docker-save");
        Directory.CreateDirectory(dir);
        var manifest = JsonNode.Parse(File.ReadAllText(f.Layout.BlobPath(f.AppManifest.Digest)))!;
        var configDigest = manifest["config"]!["digest"]!.GetValue<string>();
        File.Copy(f.Layout.BlobPath(configDigest), Path.Combine(dir, "config.json"));
        var layers = new JsonArray();
        foreach (var l in manifest["layers"]!.AsArray())
        {
            var name = l!["digest"]!.GetValue<string>()[7..19] + "/layer.tar";
            Directory.CreateDirectory(Path.Combine(dir, Path.GetDirectoryName(name)!));
            File.Copy(f.Layout.BlobPath(l["digest"]!.GetValue<string>()), Path.Combine(dir, name));
            layers.Add(name);
        }
        File.WriteAllText(Path.Combine(dir, "manifest.json"),
            new JsonArray(new JsonObject { ["Config"] = "config.json", ["RepoTags"] = new JsonArray("team/app:1.2"), ["Layers"] = layers }).ToJsonString());
        var archive = Path.Combine(f.Dir, "app-docker.tar");
        await Sh.Check($"tar -C {dir} -cf {archive} .");
        var d = await W.VmsanJson("images", "pull", $"docker-archive:{archive}");
        Assert.Equal(3, d.GetProperty("layers").GetInt32());
        Assert.Equal("/work", d.GetProperty("config").GetProperty("workingDir").GetString());
        var o = await W.VmsanJson("images", "pull", $"oci:{f.Layout.Dir}:app");
        Assert.Equal(f.AppManifest.Digest, o.GetProperty("manifestDigest").GetString());
        Assert.Empty(CacheFiles("tmp"));
    }

    [Fact]
    public async Task A_platform_the_index_lacks_is_refused_listing_the_offered_ones()
    {
        var e = await Fails("PLATFORM_NOT_FOUND", "images", "pull", $"{Reg}/team/app:multi", "--insecure-registry", "--platform", "linux/s390x");
        Assert.Contains("linux/amd64", e.GetProperty("message").GetString());
        Assert.Contains("linux/arm64", e.GetProperty("message").GetString());
        var arm = await W.VmsanJson("images", "pull", $"{Reg}/team/app:multi", "--insecure-registry", "--platform", "linux/arm64");
        Assert.Equal("linux/arm64", arm.GetProperty("platform").GetString());
    }

    [Fact]
    public async Task Unknown_repositories_and_tags_are_image_not_found_and_leave_no_name()
    {
        var refsBefore = CacheFiles("refs").ToList();
        await Fails("IMAGE_NOT_FOUND", "images", "pull", $"{Reg}/team/nothing:1", "--insecure-registry");
        await Fails("IMAGE_NOT_FOUND", "images", "pull", $"{Reg}/team/app:nope", "--insecure-registry");
        await Fails("IMAGE_NOT_FOUND", "create", "--from-image", $"{Reg}/team/app:nope", "--insecure-registry");
        Assert.Equal(refsBefore, CacheFiles("refs").ToList());
        Assert.Empty(CacheFiles("tmp"));
    }

    [Fact]
    public async Task An_unreachable_registry_says_so_quickly()
    {
        var sw = Stopwatch.StartNew();
        await Fails("REGISTRY_UNREACHABLE", "images", "pull", "127.0.0.1:1/x:1", "--insecure-registry");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        // Docker Hub: no route from the test's namespace, as on this machine.
        sw.Restart();
        var e = await Fails("REGISTRY_UNREACHABLE", "images", "pull", "busybox");
        Assert.Contains("docker.io", e.GetProperty("message").GetString());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task A_blob_whose_digest_does_not_match_is_refused_and_not_kept()
    {
        await Fails("DIGEST_MISMATCH", "images", "pull", $"{Reg}/team/corrupt:corrupt", "--insecure-registry");
        var hex = f.CorruptLayer.Digest[7..];
        Assert.DoesNotContain(CacheFiles("blobs"), p => p.Contains(hex, StringComparison.Ordinal));
        Assert.Null(await FindImage($"{Reg}/team/corrupt:corrupt"));
    }

    [Fact]
    public async Task A_truncated_layer_fails_the_create_with_bad_image_and_builds_nothing()
    {
        var vmsBefore = Directory.Exists(Path.Combine(W.Home, "vms")) ? Directory.GetDirectories(Path.Combine(W.Home, "vms")) : [];
        var rootfsBefore = Directory.GetDirectories(Path.Combine(ImagesDir, "rootfs"));
        await Fails("BAD_IMAGE", "create", "--from-image", $"oci:{f.Layout.Dir}:trunc");
        Assert.Equal(vmsBefore, Directory.Exists(Path.Combine(W.Home, "vms")) ? Directory.GetDirectories(Path.Combine(W.Home, "vms")) : []);
        Assert.Equal(rootfsBefore, Directory.GetDirectories(Path.Combine(ImagesDir, "rootfs")));
        Assert.Empty(CacheFiles("tmp"));
    }

    [Fact]
    public async Task Archives_that_are_not_images_are_bad_image()
    {
        var junkDir = Path.Combine(f.Dir, "junk");
        Directory.CreateDirectory(junkDir);
        File.WriteAllText(Path.Combine(junkDir, "readme.txt"), "not an image");
        var tar = Path.Combine(f.Dir, "junk.tar");
        await Sh.Check($"tar -C {junkDir} -cf {tar} .");
        var notTar = Path.Combine(f.Dir, "junk.bin");
        File.WriteAllBytes(notTar, System.Security.Cryptography.RandomNumberGenerator.GetBytes(5000));
        await Fails("BAD_IMAGE", "images", "pull", $"docker-archive:{tar}");
        await Fails("BAD_IMAGE", "images", "pull", $"oci-archive:{tar}");
        await Fails("BAD_IMAGE", "images", "pull", $"docker-archive:{notTar}");
        await Fails("BAD_IMAGE", "create", "--from-image", $"oci:{junkDir}");
        Assert.Empty(CacheFiles("tmp"));
    }

    [Fact]
    public async Task Basic_auth_needs_the_right_credentials_from_stdin_or_docker_config()
    {
        var image = $"{f.AuthRegistry.Host}/private/app:app";
        await Fails("REGISTRY_AUTH_FAILED", "images", "pull", image, "--insecure-registry");
        var wrong = await W.VmsanStdin("nope\n", "images", "pull", image, "--insecure-registry", "--registry-user", "tester", "--registry-password-stdin", "--json");
        Assert.True(wrong.ExitCode == 1 && wrong.Stdout.Contains("REGISTRY_AUTH_FAILED", StringComparison.Ordinal), wrong.ToString());
        var right = await W.VmsanStdin("s3cret\n", "images", "pull", image, "--insecure-registry", "--registry-user", "tester", "--registry-password-stdin", "--json");
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Equal(f.AppManifest.Digest, JsonDocument.Parse(right.Stdout).RootElement.GetProperty("manifestDigest").GetString());
        await W.Vmsan("images", "rm", image);
        var dockerConfig = Path.Combine(f.Dir, "docker");
        Directory.CreateDirectory(dockerConfig);
        File.WriteAllText(Path.Combine(dockerConfig, "config.json"),
            new JsonObject { ["auths"] = new JsonObject { [f.AuthRegistry.Host] = new JsonObject { ["auth"] = Convert.ToBase64String("tester:s3cret"u8.ToArray()) } } }.ToJsonString());
        var viaConfig = await Sh.RunAsync("ip", ["netns", "exec", W.HostNs, VmsanWorld.Cli, "images", "pull", image, "--insecure-registry", "--json"],
            new Dictionary<string, string> { ["VMSAN_HOME"] = W.Home, ["DOCKER_CONFIG"] = dockerConfig });
        Assert.True(viaConfig.ExitCode == 0, viaConfig.ToString());
    }

    [Fact]
    public async Task A_registry_with_bearer_token_auth_is_pulled_through_the_challenge_flow()
    {
        var image = $"{f.TokenRegistry.Host}/tok/app:app";
        var anonymous = await Sh.Bash($"ip netns exec {W.HostNs} curl -s -o /dev/null -w '%{{http_code}}' http://{f.TokenRegistry.Host}/v2/tok/app/manifests/app");
        Assert.Equal("401", anonymous.Stdout);
        var before = f.Tokens.Issued;
        var pulled = await W.VmsanJson("images", "pull", image, "--insecure-registry");
        Assert.Equal(f.AppManifest.Digest, pulled.GetProperty("manifestDigest").GetString());
        Assert.True(f.Tokens.Issued > before, "no token was asked for");
    }

    /// <summary>
    /// Starts `vmsan images pull IMAGE` (SIGINT at its default disposition, as a terminal gives it) and returns it once
    /// the layer's <c>.partial</c> holds more than <paramref name="atLeast"/> bytes.
    /// </summary>
    private async Task<Process> PullUntilPartial(string image, string partial, long atLeast)
    {
        var p = W.StartVmsan("images", "pull", image, "--insecure-registry");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(File.Exists(partial) && new FileInfo(partial).Length > atLeast))
        {
            if (p.HasExited)
                Assert.Fail($"the pull ended (exit {p.ExitCode}) before it could be stopped: {await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken)} "
                            + $"{await p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}; cache: {string.Join(", ", CacheFiles("blobs").Select(x => x + " " + new FileInfo(x).Length))}");
            Assert.True(DateTime.UtcNow < deadline, $"no partial download of {atLeast}+ bytes appeared");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
        return p;
    }

    [Fact]
    public async Task A_pull_interrupted_or_killed_in_the_middle_of_a_blob_keeps_only_its_partial_and_resumes_and_verifies_on_retry()
    {
        await using var proxy = await ThrottledProxy.StartAsync(W.HostNs, f.Registry.Port, 64 * 1024);
        var image = $"127.0.0.1:{proxy.Port}/team/big:big";
        var blobs = Path.Combine(ImagesDir, "blobs", "sha256");
        var partial = Path.Combine(blobs, f.BigLayer.Digest[7..] + ".partial");
        var final = Path.Combine(blobs, f.BigLayer.Digest[7..]);

        // 1. Ctrl-C: vmsan stops the download itself, says so in one line and exits 130; the cache holds verified
        //    blobs and this layer's resumable .partial, nothing else.
        using (var p = await PullUntilPartial(image, partial, 8 << 20))
        {
            var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await Sh.Check($"kill -INT {p.Id}");
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await p.WaitForExitAsync(cts.Token);
            var err = await stderr;
            Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {err}");
            Assert.Equal("error [INTERRUPTED]: Interrupted by SIGINT.", err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.DoesNotContain("fix:", err, StringComparison.Ordinal);
        }
        var interrupted = new FileInfo(partial).Length;
        Assert.InRange(interrupted, 8 << 20, f.BigLayer.Size - 1);
        Assert.False(File.Exists(final));
        foreach (var file in Directory.EnumerateFiles(blobs))
        {
            if (file == partial)
                continue;
            Assert.False(file.EndsWith(".partial", StringComparison.Ordinal), $"another partial download left: {file}");
            Assert.Equal(Path.GetFileName(file), (await Sh.Check($"sha256sum {file}")).Split(' ')[0]);
        }

        // 2. SIGKILL of the next pull, which resumed from that .partial.
        var sentBefore = proxy.BytesToClients;
        using (var p = await PullUntilPartial(image, partial, interrupted + (4 << 20)))
        {
            p.Kill();
            await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
        var cut = new FileInfo(partial).Length;
        Assert.InRange(cut, interrupted + (4 << 20), f.BigLayer.Size - 1);
        Assert.False(File.Exists(final));

        // 3. The retry completes and verifies.
        var retry = await W.VmsanJson("images", "pull", image, "--insecure-registry");
        Assert.Equal(1, retry.GetProperty("layers").GetInt32());
        Assert.Equal(f.BigLayer.Size, new FileInfo(final).Length);
        Assert.Equal(f.BigLayer.Digest[7..], (await Sh.Check($"sha256sum {final}")).Split(' ')[0]);
        Assert.False(File.Exists(partial));
        // Resumed both times: steps 2 and 3 fetched the rest of the layer (plus what was in flight at the kill and
        // the small manifests), not the whole of it again.
        var sent = proxy.BytesToClients - sentBefore;
        Assert.True(sent < f.BigLayer.Size - interrupted / 2, $"{sent} bytes sent after the interruption at {interrupted} of {f.BigLayer.Size}");
    }

    [Fact]
    public async Task A_musl_image_with_no_shell_and_no_init_boots_and_runs_its_entrypoint()
    {
        var r = await W.Vmsan("run", "--rm", "--memory", "256", "--from-image", $"oci:{f.Layout.Dir}:musl");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("hello from musl; pid 1 is vmsan-agent\n", r.Stdout);
    }

    [Fact]
    public async Task Two_vmsan_processes_pulling_one_image_at_once_overlap_and_download_its_blob_once()
    {
        // Throttled to ~1.6 MB/s, the 8 MiB layer takes ~5 s: the second pull starts while the first downloads it.
        await using var proxy = await ThrottledProxy.StartAsync(W.HostNs, f.Registry.Port, 32 * 1024);
        var image = $"127.0.0.1:{proxy.Port}/team/conc:conc";
        var ct = TestContext.Current.CancellationToken;
        var blob = Path.Combine(ImagesDir, "blobs", "sha256", f.ConcLayer.Digest[7..]);
        var partial = blob + ".partial";
        using var first = W.StartVmsan("images", "pull", image, "--insecure-registry", "--json");
        await using var killFirst = new KillOnDispose(first);
        var firstOut = first.StandardOutput.ReadToEndAsync(ct);
        var firstErr = first.StandardError.ReadToEndAsync(ct);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(File.Exists(partial) && new FileInfo(partial).Length > 0))
        {
            Assert.False(File.Exists(blob), "the first pull finished its layer before the second could start");
            Assert.False(first.HasExited, $"the first pull ended (exit {(first.HasExited ? first.ExitCode : 0)}) before its layer's transfer was seen");
            Assert.True(DateTime.UtcNow < deadline, "the first pull's layer transfer never started");
            await Task.Delay(10, ct);
        }
        var secondStart = System.Diagnostics.Stopwatch.GetTimestamp();
        var second = W.Vmsan("images", "pull", image, "--insecure-registry", "--json");
        // The second pull's first manifest request, and whether the first's layer was still in flight when it was seen.
        // Seen later than it arrived, so "not in the cache yet" when seen holds for when it arrived: a lock around the
        // whole pull (the second resolving nothing until the first is done) can never pass this.
        ProxiedRequest? secondAsked = null;
        var layerWasInFlight = false;
        while (secondAsked is null && !second.IsCompleted)
        {
            var layerDone = File.Exists(blob);
            secondAsked = proxy.Requests.FirstOrDefault(r => r.At > secondStart && r.Path.Contains("/manifests/", StringComparison.Ordinal));
            layerWasInFlight = secondAsked is not null && !layerDone;
            await Task.Delay(5, ct);
        }
        if (secondAsked is null)
            secondAsked = proxy.Requests.FirstOrDefault(r => r.At > secondStart && r.Path.Contains("/manifests/", StringComparison.Ordinal));
        var results = new[] { await second, new ProcResult(await WaitExit(first), await firstOut, await firstErr) };
        foreach (var r in results)
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal(f.ConcManifest.Digest, JsonDocument.Parse(r.Stdout).RootElement.GetProperty("manifestDigest").GetString());
        }
        var log = string.Join("\n", proxy.Requests.Select(r => $"{r.At} {r.Method} {r.Path}"));
        Assert.True(secondAsked is not null, $"the second pull asked for no manifest through the proxy; requests:\n{log}");
        Assert.True(layerWasInFlight, $"the second pull resolved the image only after the first had its layer (serialised pulls); requests:\n{log}");
        // One GET of the layer in all: the second pull waited for the first's download instead of making its own.
        Assert.Single(proxy.Requests, r => r.Method == "GET" && r.Path.EndsWith("/blobs/" + f.ConcLayer.Digest, StringComparison.Ordinal));
        // Once: the layer plus manifests and config, well under two layers' worth.
        Assert.InRange(proxy.BytesToClients, f.ConcLayer.Size, f.ConcLayer.Size + f.ConcLayer.Size / 2);
        Assert.Equal(f.ConcLayer.Size, new FileInfo(blob).Length);
        Assert.False(File.Exists(partial));
    }

    /// <summary>Kills a vmsan the test started (by its own handle) if a failed assertion leaves it running.</summary>
    private sealed class KillOnDispose(Process p) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            if (p.HasExited)
                return;
            p.Kill();
            await p.WaitForExitAsync();
        }
    }

    private static async Task<int> WaitExit(Process p)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        return p.ExitCode;
    }

    [Fact]
    public async Task A_pull_on_a_terminal_draws_a_live_bar_per_layer_and_without_one_prints_no_bars()
    {
        // ~1.6 MB/s per connection: the 3 MiB layer takes about two seconds, long enough for the display to redraw.
        await using var proxy = await ThrottledProxy.StartAsync(W.HostNs, f.Registry.Port, 32 * 1024);
        var image = $"127.0.0.1:{proxy.Port}/team/bars:bars";
        var shorts = f.BarsLayers.Select(l => l.Digest[..19]).ToArray();
        var stdoutFile = Path.Combine(f.Dir, "tty-pull.out");
        // `script` gives vmsan's stderr a real terminal (as a user's shell does); stdout goes to a file, checked apart.
        var tty = await Sh.RunAsync("script", ["-qfec",
            $"stty cols 120 rows 40; ip netns exec {W.HostNs} {VmsanWorld.Cli} images pull {image} --insecure-registry > {stdoutFile}", "/dev/null"],
            new Dictionary<string, string> { ["VMSAN_HOME"] = W.Home, ["TERM"] = "xterm-256color" }, TimeSpan.FromMinutes(2));
        Assert.True(tty.ExitCode == 0, tty.ToString());
        Assert.Equal(f.BarsManifest.Digest + "\n", File.ReadAllText(stdoutFile));
        Assert.Contains("\e[", tty.Stdout);
        var lines = TerminalLines(tty.Stdout);
        var screen = string.Join("\n", lines);
        // The last frame: from the last redraw of the first row ("resolving …") to the summary line after the display.
        var summary = lines.FindLastIndex(l => l.StartsWith($"pulled {image} (3 layers", StringComparison.Ordinal));
        Assert.True(summary > 0, screen);
        var top = lines.FindLastIndex(summary, l => l.Contains("resolving ", StringComparison.Ordinal));
        Assert.True(top >= 0, screen);
        var frame = lines[top..summary];
        foreach (var layer in f.BarsLayers)
        {
            var d = layer.Digest[..19];
            var rows = frame.Where(l => l.Contains(d, StringComparison.Ordinal)).ToList();
            Assert.True(rows.Count == 1, $"{d}: {rows.Count} rows in the last frame:\n{string.Join("\n", frame)}");
            Assert.Matches(@"\b100%", rows[0]);
            // Its size as the bar's byte column renders a finished transfer (1.0, 2.0 and 3.0 MiB plus tar headers).
            Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $" {layer.Size / 1048576.0:F1} MiB"), rows[0]);
        }
        Assert.True(frame.Count(l => l.Contains("sha256:", StringComparison.Ordinal)) == shorts.Length, string.Join("\n", frame));
        // Drawn live: some earlier frame showed a layer part-way.
        Assert.Contains(lines[..top], l => shorts.Any(d => l.Contains(d, StringComparison.Ordinal)) && Regex.IsMatch(l, @"\b([0-9]|[1-9][0-9])%"));

        // No terminal (a fresh cache, so it downloads again): the digest alone on stdout, a plain line per layer on stderr.
        var env = new Dictionary<string, string> { ["VMSAN_HOME"] = Path.Combine(f.Dir, "plain-home"), ["TERM"] = "xterm-256color" };
        var plain = await Sh.RunAsync("ip", ["netns", "exec", W.HostNs, VmsanWorld.Cli, "images", "pull", image, "--insecure-registry"], env);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Equal(f.BarsManifest.Digest + "\n", plain.Stdout);
        Assert.DoesNotContain('\e', plain.Stdout + plain.Stderr);
        foreach (var d in shorts)
            Assert.Single(plain.Stderr.Split('\n'), l => l.StartsWith($"  {d}  ", StringComparison.Ordinal) && l.EndsWith(" MiB done", StringComparison.Ordinal));
        var json = await Sh.RunAsync("ip", ["netns", "exec", W.HostNs, VmsanWorld.Cli, "images", "pull", image, "--insecure-registry", "--json"], env);
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Equal(f.BarsManifest.Digest, JsonDocument.Parse(json.Stdout).RootElement.GetProperty("manifestDigest").GetString());
        Assert.DoesNotContain('\e', json.Stdout + json.Stderr);
        Assert.DoesNotContain("sha256:", json.Stderr);
        // --json on a terminal: no display either. Stdout to a file holds the JSON alone; the terminal (stderr) gets no
        // bars and no digests. With stdout the terminal itself, only .NET's own terminal set-up precedes the JSON:
        // keypad-transmit mode (terminfo smkx, ESC[?1h ESC=), which the runtime sends to a terminal it reads keys from.
        var jsonFile = Path.Combine(f.Dir, "tty-pull.json");
        var ttyJson = await Sh.RunAsync("script", ["-qfec",
            $"ip netns exec {W.HostNs} {VmsanWorld.Cli} images pull {image} --insecure-registry --json > {jsonFile}", "/dev/null"], env, TimeSpan.FromMinutes(2));
        Assert.True(ttyJson.ExitCode == 0, ttyJson.ToString());
        var jsonText = File.ReadAllText(jsonFile);
        Assert.DoesNotContain('\e', jsonText);
        Assert.Equal(f.BarsManifest.Digest, JsonDocument.Parse(jsonText).RootElement.GetProperty("manifestDigest").GetString());
        Assert.DoesNotContain("sha256:", ttyJson.Stdout);
        Assert.DoesNotContain('\e', ttyJson.Stdout.Replace(KeypadTransmit, "", StringComparison.Ordinal));
        var onTerminal = await Sh.RunAsync("script", ["-qfec", $"ip netns exec {W.HostNs} {VmsanWorld.Cli} images pull {image} --insecure-registry --json", "/dev/null"],
            env, TimeSpan.FromMinutes(2));
        Assert.True(onTerminal.ExitCode == 0, onTerminal.ToString());
        var shown = onTerminal.Stdout.Replace(KeypadTransmit, "", StringComparison.Ordinal);
        Assert.DoesNotContain('\e', shown);
        Assert.Equal(f.BarsManifest.Digest, JsonDocument.Parse(shown).RootElement.GetProperty("manifestDigest").GetString());
    }

    private const string KeypadTransmit = "\e[?1h\e=";

    /// <summary>What a terminal was sent, as lines: escape sequences (colours, cursor moves) dropped, split at CR and LF.</summary>
    private static List<string> TerminalLines(string raw) =>
        [.. Regex.Replace(raw, @"\e\[[0-9;?]*[ -/]*[@-~]|\e[()][0-9A-B]|\e[=>78]", "").Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd())
            .Where(l => l.Length > 0)];

    [Fact]
    public async Task Rm_forgets_a_name_and_prune_keeps_the_root_of_an_existing_vm()
    {
        var name = $"{Reg}/team/app:multi";
        var rm = await W.VmsanJson("images", "rm", name);
        Assert.Equal(name, rm.GetProperty("removed")[0].GetString());
        await Fails("IMAGE_NOT_FOUND", "images", "rm", name);
        var rootfs = Path.Combine(ImagesDir, "rootfs", f.AppManifest.Digest[7..], "rootfs.ext4");
        Assert.True(File.Exists(rootfs));
        // Other names still refer to this manifest (oci:, oci-archive:), and the VM boots from it: drop them all.
        foreach (var i in (await W.VmsanJson("images")).EnumerateArray())
            await W.VmsanJson("images", "rm", i.GetProperty("name").GetString()!);
        await W.VmsanJson("images", "prune");
        Assert.True(File.Exists(rootfs), "prune removed the root of a VM that exists");
        Assert.Equal("kept\n", await Exec("cat /data/keep"));
        await W.VmsanJson("rm", "-f", f.Vm);
        var pruned = await W.VmsanJson("images", "prune");
        Assert.True(pruned.GetProperty("rootfs").GetInt32() >= 1, pruned.ToString());
        Assert.False(File.Exists(rootfs));
        Assert.DoesNotContain(CacheFiles("blobs/sha256"), p => !p.EndsWith(".partial", StringComparison.Ordinal));
    }

    private async Task<JsonElement?> FindImage(string name)
    {
        foreach (var i in (await W.VmsanJson("images")).EnumerateArray())
            if (i.GetProperty("name").GetString() == name)
                return i;
        return null;
    }
}
