using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// A rebuild of a runtime never changes the base under an existing VM: builds publish a new version file
/// (<c>runtimes/NAME/rootfs-VERSION.ext4</c>) and move the <c>rootfs.ext4</c> pointer, VMs layer on the version they
/// were created from, and <c>vmsan runtimes prune</c> removes a version only when no VM uses it. The first version is
/// published the way a build leaves it (the installation's current base image, hard-linked as a version file of a
/// recipe of the test's own, with the pointer and manifest links), in an assets directory of the test's own; the
/// rebuild is real (the real script, debootstrap from the Debian mirror, run in the root namespace like install.sh,
/// with the .debs of the runner's installation as a hard-linked cache) and adds one symlink the first version lacks.
/// One build (~1 min), two VMs, one restart.
/// </summary>
public sealed class RuntimeRebuildTests : IAsyncLifetime
{
    private const string Runtime = "rebuildtest";
    private readonly VmsanWorld _w = new();

    private string Assets => Path.Combine(_w.Home, "assets");
    private string OutDir => Path.Combine(Assets, "runtimes", Runtime);

    public async ValueTask InitializeAsync()
    {
        await _w.InitializeAsync();
        _w.Assets = Assets;
        var real = Environment.GetEnvironmentVariable("VMSAN_ASSETS") is { Length: > 0 } a ? a : "/var/lib/vmsan";
        Directory.CreateDirectory(Path.Combine(Assets, "recipes"));
        Directory.CreateDirectory(Path.Combine(Assets, "runtimes", ".cache", "debs"));
        await Sh.Check($"""
            set -e
            cp {real}/lib -r {Assets}/lib
            ln -s {real}/kernel {Assets}/kernel
            ln -s {real}/bin {Assets}/bin
            if [ -d {real}/runtimes/.cache/debs ]; then cp -al {real}/runtimes/.cache/debs/. {Assets}/runtimes/.cache/debs/; fi
            mkdir -p {OutDir}
            base=$(readlink -f {real}/runtimes/base/rootfs.ext4)
            ln "$base" {OutDir}/{FirstVersion}.ext4 2>/dev/null || cp --sparse=always "$base" {OutDir}/{FirstVersion}.ext4
            cp {real}/runtimes/base/manifest.json {OutDir}/{FirstVersion}.json
            ln -s {FirstVersion}.ext4 {OutDir}/rootfs.ext4
            ln -s {FirstVersion}.json {OutDir}/manifest.json
            """);
        File.WriteAllText(Path.Combine(Assets, "recipes", Runtime + ".json"),
            "{\"name\":\"" + Runtime + "\",\"description\":\"rebuild test\",\"debs\":[],\"links\":{\"/etc/vmsan-rebuild\":\"two\"}}");
    }

    /// <summary>The version the test publishes first: what an earlier build left.</summary>
    private const string FirstVersion = "rootfs-20000101T000000Z-00000000";

    public async ValueTask DisposeAsync() => await _w.DisposeAsync();

    /// <summary>A real build, in the root namespace (it downloads from the Debian mirror, as install.sh does).</summary>
    private async Task<JsonElement> Build()
    {
        var r = await Sh.RunAsync(VmsanWorld.Cli, ["runtimes", "build", Runtime, "--json"], _w.Env(), TimeSpan.FromMinutes(8));
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    private async Task<string> Exec(string id, string script)
    {
        var r = await _w.Vmsan("exec", id, "sh", "-c", script);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    /// <summary>What the base image holds that a VM reads (the marker link and digests of files from the image).</summary>
    private const string Probe = "readlink /etc/vmsan-rebuild || echo none; sha256sum /usr/bin/bash /usr/bin/dpkg /etc/os-release | cut -c1-64";

    [Fact(Timeout = 1_500_000)]
    public async Task A_rebuild_leaves_an_existing_VM_on_its_own_version_and_new_VMs_get_the_new_one()
    {
        var ct = TestContext.Current.CancellationToken;
        var image1 = Path.Combine(OutDir, FirstVersion + ".ext4");
        var listed = (await _w.VmsanJson("runtimes")).EnumerateArray().Single(r => r.GetProperty("name").GetString() == Runtime);
        Assert.Equal(image1, listed.GetProperty("image").GetString());
        Assert.False(listed.GetProperty("upToDate").GetBoolean(), listed.ToString());

        var old = await _w.CreateVm("--runtime", Runtime);
        Assert.Equal(image1, _w.State(old)!.Value.GetProperty("baseImage").GetString());
        var before = await Exec(old, Probe + "; echo mine > /home/user/mine.txt; sync");
        Assert.StartsWith("none\n", before);
        var stop = await _w.Vmsan("stop", old);
        Assert.True(stop.ExitCode == 0, stop.ToString());

        ct.ThrowIfCancellationRequested();
        // The build is a real one, of a new version; the old one stays (the stopped VM uses it).
        var v2 = await Build();
        var image2 = v2.GetProperty("image").GetString()!;
        Assert.Matches(@"/rootfs-\d{8}T\d{6}Z-[0-9a-f]{8}\.ext4$", image2);
        Assert.True(v2.GetProperty("upToDate").GetBoolean(), v2.ToString());
        Assert.NotEqual(image1, image2);
        Assert.True(File.Exists(image1), "the version the VM uses was removed by the build");
        Assert.Equal(1, v2.GetProperty("olderVersions").GetInt32());
        Assert.Equal(Path.GetFileName(image2), new FileInfo(Path.Combine(OutDir, "rootfs.ext4")).LinkTarget);

        ct.ThrowIfCancellationRequested();
        // The old VM, restarted, reads its own version and its own writes; a new VM reads the new version.
        var start = await _w.Vmsan("start", old);
        Assert.True(start.ExitCode == 0, start.ToString());
        Assert.Equal(before + "mine\n", await Exec(old, Probe + "; cat /home/user/mine.txt"));
        var fresh = await _w.CreateVm("--runtime", Runtime);
        Assert.Equal(image2, _w.State(fresh)!.Value.GetProperty("baseImage").GetString());
        Assert.StartsWith("two\n", await Exec(fresh, Probe));

        // Prune keeps what a VM uses and the current version; once the old VM is gone, its version goes.
        var kept = await _w.VmsanJson("runtimes", "prune");
        Assert.Empty(kept.GetProperty("removed").EnumerateArray());
        Assert.Contains(image1, kept.GetProperty("inUse").EnumerateArray().Select(e => e.GetString()));
        var rm = await _w.Vmsan("rm", "-f", old);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var pruned = await _w.VmsanJson("runtimes", "prune");
        Assert.Equal(new[] { image1 }, pruned.GetProperty("removed").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.True(pruned.GetProperty("bytes").GetInt64() > 0, pruned.ToString());
        Assert.False(File.Exists(image1));
        Assert.False(File.Exists(Path.ChangeExtension(image1, ".json")));
        Assert.True(File.Exists(image2));
        Assert.Equal("two\n", (await Exec(fresh, "readlink /etc/vmsan-rebuild")));
        var list = await _w.VmsanJson("runtimes");
        var rt = list.EnumerateArray().Single(r => r.GetProperty("name").GetString() == Runtime);
        Assert.Equal(image2, rt.GetProperty("image").GetString());
        Assert.Equal(0, rt.GetProperty("olderVersions").GetInt32());
        var rm2 = await _w.Vmsan("rm", "-f", fresh);
        Assert.True(rm2.ExitCode == 0, rm2.ToString());
    }
}
