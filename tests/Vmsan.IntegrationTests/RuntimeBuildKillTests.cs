using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// A runtime build interrupted by SIGINT or SIGTERM stops and removes its temp tree before vmsan exits; one that is
/// SIGKILLed leaves no process behind and the next build removes its temp tree; the image built before stays in
/// place and boots. The builds run against a test-owned assets directory (the
/// real kernel and agent linked in, the real base image hard-linked as the "previous image" of a recipe of
/// the test's own) and a Debian mirror on the host namespace's loopback that accepts and never answers, so
/// debootstrap is reliably in the middle of a download when the kill comes. One VM boots at the end.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class RuntimeBuildKillTests : IAsyncLifetime
{
    private const string Runtime = "killtest";
    private readonly VmsanWorld _w = new();
    private readonly List<Socket> _held = [];
    private Socket? _mirror;
    private int _accepted;

    private string Assets => Path.Combine(_w.Home, "assets");
    private string OutDir => Path.Combine(Assets, "runtimes", Runtime);
    /// <summary>The version the test publishes as the runtime's "previous image".</summary>
    private string Image => Path.Combine(OutDir, "rootfs-20000101T000000Z-killtest.ext4");
    private string Pointer => Path.Combine(OutDir, "rootfs.ext4");
    private int MirrorPort => ((IPEndPoint)_mirror!.LocalEndPoint!).Port;

    public async ValueTask InitializeAsync()
    {
        await _w.InitializeAsync();
        var real = Environment.GetEnvironmentVariable("VMSAN_ASSETS") is { Length: > 0 } a ? a : "/var/lib/vmsan";
        Directory.CreateDirectory(Path.Combine(Assets, "recipes"));
        Directory.CreateDirectory(Path.Combine(Assets, "lib"));
        Directory.CreateDirectory(OutDir);
        File.Copy(Path.Combine(real, "lib", "build-rootfs.sh"), Path.Combine(Assets, "lib", "build-rootfs.sh"));
        File.WriteAllText(Path.Combine(Assets, "recipes", Runtime + ".json"), $$"""{"name":"{{Runtime}}","description":"kill test","debs":[]}""");
        // Read-only uses of the real assets: the kernel and agent by symlink, the base image's current version by
        // hard link, published the way a build publishes (a pointer symlink and the version's manifest).
        await Sh.Check($"""
            set -e
            ln -s {real}/kernel {Assets}/kernel
            ln -s {real}/bin {Assets}/bin
            base=$(readlink -f {real}/runtimes/base/rootfs.ext4)
            ln "$base" {Image} 2>/dev/null || cp --sparse=always "$base" {Image}
            cp {real}/runtimes/base/manifest.json {Image}.json.tmp && mv {Image}.json.tmp {OutDir}/{Path.GetFileNameWithoutExtension(Image)}.json
            ln -s {Path.GetFileName(Image)} {Pointer}
            ln -s {Path.GetFileNameWithoutExtension(Image)}.json {OutDir}/manifest.json
            """);
        _mirror = await NamespaceSockets.ListenAsync(_w.HostNs, new IPEndPoint(IPAddress.Loopback, 0));
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var s = await _mirror.AcceptAsync();
                    lock (_held)
                        _held.Add(s);
                    Interlocked.Increment(ref _accepted);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        _mirror?.Dispose();
        lock (_held)
            _held.ForEach(s => s.Dispose());
        // Only the test's own builds: each vmsan by its process; the build script's watchdog then kills the
        // build's process group within a second (what the test itself checks).
        foreach (var b in _builds)
        {
            if (!b.Process.HasExited)
                b.Process.Kill();
            b.Process.Dispose();
        }
        await AssertNoBuildProcessWithin(TimeSpan.FromSeconds(15));
        await _w.DisposeAsync();
    }

    /// <summary>A `vmsan runtimes build` started by the test; its stderr is collected as it comes (the build may never end on its own).</summary>
    private sealed class Build
    {
        private readonly System.Text.StringBuilder _err = new();

        public Build(Process p)
        {
            Process = p;
            Stdout = p.StandardOutput.ReadToEndAsync();
            Stderr = Task.Run(async () =>
            {
                while (await p.StandardError.ReadLineAsync() is { } line)
                    lock (_err)
                        _err.Append(line).Append('\n');
                lock (_err)
                    return _err.ToString();
            });
        }

        public Process Process { get; }
        public Task<string> Stdout { get; }
        public Task<string> Stderr { get; }

        /// <summary>What the build wrote to stderr so far (never waits for its end).</summary>
        public string ErrSoFar
        {
            get
            {
                lock (_err)
                    return _err.ToString();
            }
        }
    }

    private readonly List<Build> _builds = [];

    private Dictionary<string, string> Env(int mirrorPort) => new()
    {
        ["VMSAN_HOME"] = _w.Home,
        ["VMSAN_ASSETS"] = Assets,
        ["VMSAN_CLI"] = VmsanWorld.Cli,
        ["VMSAN_DEBIAN_MIRROR"] = $"http://127.0.0.1:{mirrorPort}/debian",
    };

    private Build StartBuild(int mirrorPort, params string[] extra)
    {
        // `env` and `ip netns exec` exec the command: the process is vmsan itself. --default-signal=INT: SIGINT as a
        // terminal gives it, even when the test run inherited it ignored (see VmsanWorld.StartVmsan).
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var x in (string[])["--default-signal=INT", "ip", "netns", "exec", _w.HostNs, VmsanWorld.Cli, "runtimes", "build", Runtime, .. extra])
            psi.ArgumentList.Add(x);
        foreach (var (k, v) in Env(mirrorPort))
            psi.Environment[k] = v;
        var b = new Build(Process.Start(psi)!);
        _builds.Add(b);
        return b;
    }

    /// <summary>
    /// Until debootstrap is in the build's temp tree and has connected to the mirror (which never answers, so it
    /// stays there), failing rather than hanging: after 120 s, or at once if the build ended.
    /// </summary>
    private async Task WaitForDebootstrapDownload(int acceptedBefore, Build b)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            var started = b.ErrSoFar.Contains($"{Runtime}: debootstrap --variant=minbase", StringComparison.Ordinal)
                && Directory.EnumerateDirectories(OutDir, ".build.*").Any(d => Directory.Exists(Path.Combine(d, "debootstrap")));
            if (started && Volatile.Read(ref _accepted) > acceptedBefore)
                return;
            // Only a build that ended may be awaited: one waiting on the mirror never closes its stderr.
            if (b.Process.HasExited)
                Assert.Fail($"the build ended (exit {b.Process.ExitCode}) before debootstrap reached the mirror: {await b.Stderr}");
            await Task.Delay(200);
        }
        Assert.Fail($"debootstrap did not reach the mirror within 120 s; the build said: {b.ErrSoFar}");
    }

    private async Task<string> BuildProcesses() =>
        (await Sh.Bash($"pgrep -af -- '{Assets}' | grep -v pgrep || true")).Stdout.Trim();

    private async Task AssertNoBuildProcessWithin(TimeSpan t)
    {
        var deadline = DateTime.UtcNow + t;
        string left;
        while ((left = await BuildProcesses()).Length > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(250);
        Assert.True(left.Length == 0, "build processes still running: " + left);
    }

    private IEnumerable<string> TempLeftovers() =>
        Directory.EnumerateFileSystemEntries(OutDir, ".build.*").Where(f => Path.GetFileName(f) != ".build.lock")
            .Concat(Directory.EnumerateFiles(OutDir, "*.tmp"));

    private static async Task<string> Inode(string path) => (await Sh.Check($"stat -c %i '{path}'")).Trim();

    /// <summary>The build script's shell: the leader of the build's process group (the watchdog subshell has the same command line).</summary>
    private async Task<int> BuildGroupLeader()
    {
        var leader = (await Sh.Check(
            $"for p in $(pgrep -f -- 'build-rootfs.sh {Runtime} {OutDir}'); do [ \"$(ps -o pgid= -p $p | tr -d ' ')\" = \"$p\" ] && echo $p; done; true")).Trim();
        Assert.True(int.TryParse(leader, out var pgid), $"no single build group leader: '{leader}'");
        return pgid;
    }

    /// <summary>Whether any process of group <paramref name="pgid"/> is left (kill -0 to the group).</summary>
    private static async Task<bool> GroupAlive(int pgid) => (await Sh.Bash($"kill -0 -- -{pgid} 2>/dev/null")).ExitCode == 0;

    /// <summary>
    /// Interrupts a build with <paramref name="signal"/> while debootstrap waits on the mirror: vmsan stops it and
    /// returns only once the build's process group is empty and its temp tree is gone, exit 128 + the signal, one line.
    /// </summary>
    private async Task InterruptBuild(string signal, int number)
    {
        var b = StartBuild(MirrorPort);
        await WaitForDebootstrapDownload(Volatile.Read(ref _accepted), b);
        var pgid = await BuildGroupLeader();
        // 5000 files in the temp tree (a build part-way through dpkg holds more): removing them takes the script's
        // trap long enough that a vmsan that exited without waiting for it is caught below.
        var tree = Directory.EnumerateDirectories(OutDir, ".build.*").Single(d => Directory.Exists(Path.Combine(d, "debootstrap")));
        await Sh.Check($"set -e; cd '{tree}'; for d in $(seq 1 5); do mkdir filler$d; (cd filler$d && seq -f f%g 1 1000 | xargs touch); done");
        var errBefore = b.ErrSoFar;
        await Sh.Check($"kill -{signal} {b.Process.Id}");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await b.Process.WaitForExitAsync(cts.Token);
        // Checked at once: vmsan waits for its build's cleanup; it is not the watchdog's later SIGKILL that ends it.
        Assert.False(await GroupAlive(pgid), $"a process of the build's group {pgid} outlived vmsan");
        Assert.Empty(TempLeftovers());
        var err = await b.Stderr;
        Assert.True(b.Process.ExitCode == 128 + number, $"exit {b.Process.ExitCode}: {err}");
        Assert.Equal($"error [INTERRUPTED]: Interrupted by SIG{signal}.", err[errBefore.Length..].Trim());
        Assert.Equal("", await b.Stdout);
        Assert.Equal("", await BuildProcesses());
    }

    [Fact(Timeout = 600_000)]
    public async Task An_interrupted_build_stops_cleanly_and_a_SIGKILLed_one_leaves_nothing_running_and_the_next_build_removes_its_leftovers_keeping_the_old_image()
    {
        var inode = await Inode(Image);
        var size = new FileInfo(Image).Length;

        // 0. Ctrl-C, then SIGTERM, of the vmsan that runs the build: each stops the build and removes its temp tree
        //    before vmsan exits (130, 143), and the image built before stays published.
        await InterruptBuild("INT", 2);
        await InterruptBuild("TERM", 15);
        Assert.Equal(Path.GetFileName(Image), new FileInfo(Pointer).LinkTarget);
        Assert.Equal(inode, await Inode(Image));

        // 1. SIGKILL the vmsan that runs the build, while debootstrap waits on the mirror.
        var b1 = StartBuild(MirrorPort);
        await WaitForDebootstrapDownload(0, b1);
        Assert.NotEqual("", await BuildProcesses());
        b1.Process.Kill();
        await b1.Process.WaitForExitAsync(TestContext.Current.CancellationToken);
        await AssertNoBuildProcessWithin(TimeSpan.FromSeconds(15));
        Assert.NotEmpty(TempLeftovers());   // what the kill left for the next build to remove

        // 2. A build whose script shell is SIGKILLed (vmsan survives): its processes go too, and vmsan says why.
        //    Meanwhile a second build of the same runtime is refused, not run beside it.
        var b2 = StartBuild(MirrorPort);
        await WaitForDebootstrapDownload(Volatile.Read(ref _accepted), b2);
        var busy = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "runtimes", "build", Runtime, "--json"], Env(MirrorPort), TimeSpan.FromSeconds(60));
        Assert.True(busy.ExitCode != 0, busy.ToString());
        Assert.Equal("RUNTIME_BUILD_BUSY", JsonDocument.Parse(busy.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        await Sh.Check($"kill -KILL {await BuildGroupLeader()}");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            await b2.Process.WaitForExitAsync(cts.Token);
        Assert.NotEqual(0, b2.Process.ExitCode);
        Assert.Contains("RUNTIME_BUILD_FAILED", await b2.Stderr);
        await AssertNoBuildProcessWithin(TimeSpan.FromSeconds(15));

        // 3. The next build (the mirror now refuses connections, so it fails at once) removes both builds' leftovers.
        var closedPort = MirrorPort;
        _mirror!.Dispose();
        var b3 = StartBuild(closedPort);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
            await b3.Process.WaitForExitAsync(cts.Token);
        var err3 = await b3.Stderr;
        Assert.NotEqual(0, b3.Process.ExitCode);
        Assert.Contains("error [RUNTIME_BUILD_FAILED]", err3);
        Assert.Contains("left by a build that was killed", err3);   // progress lines: not shown with --json
        Assert.Empty(TempLeftovers());
        Assert.DoesNotContain(Assets, File.ReadAllText("/proc/mounts"));
        await AssertNoBuildProcessWithin(TimeSpan.FromSeconds(5));

        // 4. The image built before is the same file, still the published one, still listed as built, and boots.
        Assert.Equal(inode, await Inode(Image));
        Assert.Equal(size, new FileInfo(Image).Length);
        Assert.Equal(Path.GetFileName(Image), new FileInfo(Pointer).LinkTarget);
        var list = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "runtimes", "--json"], Env(closedPort));
        Assert.True(list.ExitCode == 0, list.ToString());
        var rt = JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray().Single(r => r.GetProperty("name").GetString() == Runtime);
        Assert.True(rt.GetProperty("built").GetBoolean(), rt.ToString());
        Assert.Equal(Image, rt.GetProperty("image").GetString());

        var create = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "create", "--runtime", Runtime, "--memory", "256", "--json"],
            Env(closedPort), TimeSpan.FromMinutes(4));
        Assert.True(create.ExitCode == 0, create.ToString());
        var id = JsonDocument.Parse(create.Stdout).RootElement.GetProperty("id").GetString()!;
        try
        {
            var exec = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "exec", id, "sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME; whoami"],
                Env(closedPort));
            Assert.True(exec.ExitCode == 0, exec.ToString());
            Assert.Equal("trixie\nuser\n", exec.Stdout);
        }
        finally
        {
            await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "rm", "-f", id], Env(closedPort));
        }
    }

    [Fact(Timeout = 300_000)]
    public async Task A_build_refuses_to_turn_an_unversioned_image_that_a_VM_uses_by_name_into_the_pointer()
    {
        var ct = TestContext.Current.CancellationToken;
        // An installation from before versioned builds: the image is the plain file rootfs.ext4, and so is the
        // name a VM's overlay and vm.json record.
        await Sh.Check($"""
            set -e
            rm {Pointer} {OutDir}/manifest.json
            mv {Image} {Pointer}
            mv {OutDir}/{Path.GetFileNameWithoutExtension(Image)}.json {OutDir}/manifest.json
            """);
        var inode = await Inode(Pointer);
        var create = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "create", "--runtime", Runtime, "--memory", "256", "--json"],
            Env(MirrorPort), TimeSpan.FromMinutes(4));
        Assert.True(create.ExitCode == 0, create.ToString());
        var id = JsonDocument.Parse(create.Stdout).RootElement.GetProperty("id").GetString()!;
        Assert.Equal(Pointer, _w.State(id)!.Value.GetProperty("baseImage").GetString());
        ct.ThrowIfCancellationRequested();

        // Refused before anything runs: no temp tree, no new version, the plain file untouched.
        var refused = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "runtimes", "build", Runtime, "--json"], Env(MirrorPort), TimeSpan.FromMinutes(2));
        Assert.True(refused.ExitCode != 0, refused.ToString());
        var error = JsonDocument.Parse(refused.Stdout).RootElement.GetProperty("error");
        Assert.Equal("RUNTIME_IN_USE", error.GetProperty("code").GetString());
        Assert.Contains(id, error.GetProperty("message").GetString());
        Assert.Equal(0, Volatile.Read(ref _accepted));
        Assert.Empty(TempLeftovers());
        Assert.Empty(Directory.EnumerateFiles(OutDir, "rootfs-*"));
        Assert.Null(new FileInfo(Pointer).LinkTarget);
        Assert.Equal(inode, await Inode(Pointer));

        // Once the VM is gone the build goes ahead (and fails at the mirror, which now refuses connections).
        var rm = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "rm", "-f", id], Env(MirrorPort));
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var closedPort = MirrorPort;
        _mirror!.Dispose();
        var b = StartBuild(closedPort);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
            await b.Process.WaitForExitAsync(cts.Token);
        var err = await b.Stderr;
        Assert.Contains("error [RUNTIME_BUILD_FAILED]", err);
        Assert.Contains("debootstrap failed", err);
        Assert.Equal(inode, await Inode(Pointer));
    }
}
