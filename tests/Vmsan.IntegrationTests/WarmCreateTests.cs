using System.Globalization;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Warm create on real VMs (VMSAN_WARM=1, a user's default): the first create boots cold and leaves the boot snapshot,
/// the next ones resume from it as machines of their own, <c>--cold</c> and other sizes boot for real, and pruning the
/// boot snapshots leaves the VMs made from them running. Five boots in all.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class WarmCreateTests(WarmCreateTests.Vm vm) : IClassFixture<WarmCreateTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new() { Warm = true };
        public string First { get; set; } = "";
        public List<string> Warm { get; } = [];

        public ValueTask InitializeAsync() => World.InitializeAsync();

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    private string SnapshotsDir => Path.Combine(W.Home, "snapshots");

    private List<JsonElement> BootSnapshots() => !Directory.Exists(SnapshotsDir) ? [] :
        Directory.GetDirectories(SnapshotsDir, "boot-*")
            .Select(d => JsonDocument.Parse(File.ReadAllText(Path.Combine(d, "snapshot.json"))).RootElement.Clone()).ToList();

    /// <summary><c>create --verbose --json</c>: the VM and what stderr said about warm or cold.</summary>
    private async Task<(JsonElement Vm, string Log)> Create(params string[] args)
    {
        var r = await W.Vmsan(["create", "--verbose", "--json", .. args]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return (JsonDocument.Parse(r.Stdout).RootElement.Clone(), r.Stderr);
    }

    private async Task<string> Exec(string id, string script)
    {
        var r = await W.Vmsan("exec", id, "sh", "-c", script);
        Assert.True(r.ExitCode == 0, $"{id}: {r}");
        return r.Stdout;
    }

    private string Token(string id) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(W.Home, "vms", id, "secrets.json"))).RootElement.GetProperty("token").GetString()!;

    private static string Inode(string path) => Sh.Bash($"stat -c %i {path}").GetAwaiter().GetResult().Stdout.Trim();

    [Fact]
    public async Task The_first_create_boots_cold_and_leaves_a_boot_snapshot_that_snapshot_list_does_not_show()
    {
        var (first, log) = await Create("--memory", "256");
        vm.First = first.GetProperty("id").GetString()!;
        Assert.Equal("cold", first.GetProperty("boot").GetString());
        Assert.Contains("this create builds it", log);
        var boot = Assert.Single(BootSnapshots());
        Assert.Equal("boot", boot.GetProperty("kind").GetString());
        Assert.Equal(256, boot.GetProperty("memoryMib").GetInt32());
        Assert.Equal(vm.First, boot.GetProperty("sourceVm").GetString());
        Assert.Contains("memory=256\n", boot.GetProperty("bootKey").GetString());
        Assert.Empty(Directory.GetDirectories(SnapshotsDir, ".tmp-*"));
        Assert.Empty((await W.VmsanJson("snapshot", "list")).EnumerateArray());
        // The VM it was made from carries on.
        Assert.Equal("ok\n", await Exec(vm.First, "echo ok"));
    }

    [Fact]
    public async Task Later_creates_resume_warm_each_with_its_own_hostname_token_entropy_and_clock()
    {
        var created = await Task.WhenAll(Create("--memory", "256"), Create("--memory", "256"));
        foreach (var (v, log) in created)
        {
            Assert.True(v.GetProperty("boot").GetString() == "warm", log);
            Assert.Contains("warm: resuming boot snapshot boot-", log);
            vm.Warm.Add(v.GetProperty("id").GetString()!);
        }
        Assert.Single(BootSnapshots());
        var randoms = new List<string>();
        foreach (var id in vm.Warm.Prepend(vm.First))
        {
            var host0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            var o = (await Exec(id, "date +%s.%N; hostname; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo")).Split('\n');
            var host1 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            var guest = double.Parse(o[0], CultureInfo.InvariantCulture);
            Assert.True(guest > host0 - 1 && guest < host1 + 1, $"{id}: guest clock {guest:F3}, host {host0:F3}..{host1:F3}");
            Assert.Equal(id, o[1]);
            randoms.Add(o[2]);
        }
        Assert.Equal(3, randoms.Distinct().Count());
        Assert.Equal(3, vm.Warm.Prepend(vm.First).Select(Token).Distinct().Count());
        // Disk: a hard link to the boot snapshot's layer, under a top layer of its own; writes stay in the VM.
        var boot = BootSnapshots()[0];
        var layer = Path.Combine(SnapshotsDir, boot.GetProperty("id").GetString()!, boot.GetProperty("diskLayer").GetString() ?? "disk.qcow2");
        Assert.Equal(Inode(layer), Inode(Path.Combine(W.Home, "vms", vm.Warm[0], "disk-boot.qcow2")));
        await Exec(vm.Warm[0], "echo mine > /home/user/w; sync");
        Assert.Contains("No such file", await Exec(vm.Warm[1], "ls /home/user/w 2>&1 || true"));
    }

    [Fact]
    public async Task Create_cold_boots_for_real()
    {
        var (v, log) = await Create("--memory", "256", "--cold");
        Assert.Equal("cold", v.GetProperty("boot").GetString());
        Assert.Contains("cold: --cold", log);
        Assert.Single(BootSnapshots());
        // A real boot has its console from the start: the agent's ready marker is there.
        Assert.Contains("vmsan-agent: ready", (await W.Vmsan("logs", v.GetProperty("id").GetString()!)).Stdout);
    }

    [Fact]
    public async Task Another_memory_size_does_not_reuse_the_boot_snapshot_but_makes_its_own()
    {
        var (v, log) = await Create("--memory", "320");
        Assert.Equal("cold", v.GetProperty("boot").GetString());
        Assert.Contains("memory 320 MiB", log);
        Assert.Equal([256, 320], BootSnapshots().Select(b => b.GetProperty("memoryMib").GetInt32()).Order());
    }

    [Fact]
    public async Task Pruning_keeps_current_boot_snapshots_and_all_removes_them_while_warm_vms_run_on()
    {
        Assert.Empty((await W.VmsanJson("snapshot", "prune")).GetProperty("removed").EnumerateArray());
        Assert.Equal(2, BootSnapshots().Count);
        Assert.Equal(2, (await W.VmsanJson("snapshot", "prune", "--all")).GetProperty("removed").GetArrayLength());
        Assert.Empty(BootSnapshots());
        foreach (var id in vm.Warm)
            Assert.Equal("ok\n", await Exec(id, "echo 3 > /proc/sys/vm/drop_caches; ls /bin/sh >/dev/null && echo ok"));
        // A warm VM is a whole VM: it can be snapshotted like a booted one.
        var s = await W.Vmsan("snapshot", "create", vm.Warm[0], "--name", "of-warm");
        Assert.True(s.ExitCode == 0, s.ToString());
        Assert.Equal("mine\n", await Exec(vm.Warm[0], "cat /home/user/w"));
        Assert.Equal(0, (await W.Vmsan("snapshot", "rm", "of-warm")).ExitCode);
    }
}
