using System.Globalization;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// One source VM, one snapshot, three clones at once: memory (a process, tmpfs) and disk carry over, each clone
/// is its own machine (hostname, token, entropy, clock), disks are isolated, and the snapshot is protected
/// while clones use it.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class SnapshotTests(SnapshotTests.Vm vm) : IClassFixture<SnapshotTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Source { get; private set; } = "";
        public List<string> Clones { get; } = [];
        public JsonElement Snapshot { get; set; }
        public string SourceExec { get; set; } = "";
        public int SourceExecPid { get; set; }

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            // Default confinement: chrooted, unprivileged, seccomp, cgroup.
            Source = await World.CreateVm();
        }

        public async ValueTask DisposeAsync()
        {
            await World.Vmsan("snapshot", "rm", "t1");
            await World.DisposeAsync();
        }
    }

    private VmsanWorld W => vm.World;

    private async Task<string> Exec(string id, string script)
    {
        var r = await W.Vmsan("exec", id, "sh", "-c", script);
        Assert.True(r.ExitCode == 0, $"{id}: {r}");
        return r.Stdout;
    }

    private static string Inode(string path) => Sh.Bash($"stat -c %i {path}").GetAwaiter().GetResult().Stdout.Trim();

    private string Token(string id) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(W.Home, "vms", id, "secrets.json"))).RootElement.GetProperty("token").GetString()!;

    [Fact]
    public async Task Snapshot_create_captures_a_running_vm_which_keeps_running()
    {
        await Exec(vm.Source, "set -e; echo tmpfs-before > /tmp/t; echo disk-before > /home/user/d; sync; sleep 100000 >/dev/null 2>&1 & echo $! > /tmp/bgpid");
        // A detached exec in the source's agent table at snapshot time.
        var d = await W.Vmsan("exec", "-d", vm.Source, "--", "sleep", "100000");
        Assert.True(d.ExitCode == 0, d.ToString());
        vm.SourceExec = d.Stdout.Trim();
        vm.SourceExecPid = (await W.VmsanJson("ps", vm.Source)).GetProperty("execs").EnumerateArray()
            .Single(e => e.GetProperty("id").GetString() == vm.SourceExec).GetProperty("pid").GetInt32();
        var r = await W.Vmsan("snapshot", "create", vm.Source, "--name", "t1", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        vm.Snapshot = JsonDocument.Parse(r.Stdout).RootElement.Clone();
        Assert.Equal("t1", vm.Snapshot.GetProperty("name").GetString());
        Assert.StartsWith("7.", vm.Snapshot.GetProperty("vmmVersion").GetString());
        var list = await W.VmsanJson("snapshot", "list");
        Assert.Equal("t1", list.EnumerateArray().Single().GetProperty("name").GetString());
        Assert.Equal("running", (await W.VmsanJson("get", vm.Source)).GetProperty("status").GetString());
        // Copy-free disk: the source's old top layer is the snapshot's layer (one inode, now read-only and root's),
        // and the source continues on a new layer; what it writes now is not in the snapshot.
        var snapId = vm.Snapshot.GetProperty("id").GetString()!;
        var layer = Path.Combine(W.Home, "snapshots", snapId, vm.Snapshot.GetProperty("diskLayer").GetString()!);
        Assert.Equal(Inode(Path.Combine(W.Home, "vms", vm.Source, "disk.qcow2")), Inode(layer));
        Assert.Equal($"disk-{snapId}.qcow2", W.State(vm.Source)!.Value.GetProperty("disk").GetString());
        Assert.Equal("root 444", (await Sh.Bash($"stat -c '%U %a' {layer}")).Stdout.Trim());
        Assert.NotNull((await W.VmsanJson("get", vm.Source)).GetProperty("confinement").GetProperty("jail").GetString());
        await Exec(vm.Source, "echo source-after > /home/user/after; echo source-after > /tmp/after; sync");
        Assert.Empty(Directory.GetDirectories(Path.Combine(W.Home, "snapshots"), ".tmp-*"));
    }

    [Fact]
    public async Task Three_clones_resume_with_memory_and_disk_and_their_own_identity()
    {
        var created = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => W.VmsanJson("create", "--snapshot", "t1")));
        vm.Clones.AddRange(created.Select(c => c.GetProperty("id").GetString()!));
        Assert.Equal(3, vm.Clones.Distinct().Count());
        var randoms = new List<string>();
        foreach (var id in vm.Clones)
        {
            var host0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            var o = (await Exec(id, "date +%s.%N; hostname; kill -0 $(cat /tmp/bgpid) && echo bg-alive; cat /tmp/t /home/user/d; ls /home/user/after /tmp/after 2>&1; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo"))
                .Split('\n');
            var host1 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            var guest = double.Parse(o[0], CultureInfo.InvariantCulture);
            Assert.True(guest > host0 - 1 && guest < host1 + 1, $"{id}: guest clock {guest:F3}, host {host0:F3}..{host1:F3}");
            Assert.Equal(id, o[1]);
            Assert.Equal("bg-alive", o[2]);
            Assert.Equal("tmpfs-before", o[3]);
            Assert.Equal("disk-before", o[4]);
            Assert.Contains("No such file", o[5]);
            Assert.Contains("No such file", o[6]);
            randoms.Add(o[7]);
        }
        Assert.Equal(3, randoms.Distinct().Count());
        var tokens = vm.Clones.Select(Token).Append(Token(vm.Source)).ToList();
        Assert.Equal(4, tokens.Distinct().Count());
        // Clones keep the source's confinement, chroot included.
        foreach (var id in vm.Clones)
            Assert.NotNull((await W.VmsanJson("get", id)).GetProperty("confinement").GetProperty("jail").GetString());
    }

    [Fact]
    public async Task Every_vm_and_every_clone_has_a_virtio_rng_device_the_guest_kernel_uses()
    {
        foreach (var id in vm.Clones.Prepend(vm.Source))
        {
            var o = await Exec(id, "cat /sys/devices/virtual/misc/hw_random/rng_available /sys/devices/virtual/misc/hw_random/rng_current");
            Assert.True(o.Split('\n')[0].Contains("virtio_rng", StringComparison.Ordinal) && o.Split('\n')[1].StartsWith("virtio_rng", StringComparison.Ordinal), $"{id}: {o}");
        }
        var snapId = vm.Snapshot.GetProperty("id").GetString()!;
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(W.Home, "snapshots", snapId, "snapshot.json"))).RootElement;
        Assert.Equal("blk,net,rng", manifest.GetProperty("devices").GetString());
    }

    [Fact]
    public async Task A_clone_starts_with_an_empty_exec_table_while_the_sources_processes_run_on()
    {
        foreach (var id in vm.Clones)
        {
            var ps = (await W.VmsanJson("ps", id)).GetProperty("execs").EnumerateArray().ToList();
            Assert.DoesNotContain(ps, e => e.GetProperty("id").GetString() == vm.SourceExec);
            var kill = await W.Vmsan("kill", id, vm.SourceExec, "KILL");
            Assert.True(kill.ExitCode != 0 && kill.ToString().Contains("exec or session", StringComparison.Ordinal), kill.ToString());
            var attach = await W.Vmsan("exec", "attach", id, vm.SourceExec);
            Assert.True(attach.ExitCode != 0 && attach.ToString().Contains("exec or session", StringComparison.Ordinal), attach.ToString());
            // The process itself is the clone's now, still running.
            Assert.Equal("alive\n", await Exec(id, $"kill -0 {vm.SourceExecPid} && echo alive"));
            // New execs are listed as usual.
            var d = await W.Vmsan("exec", "-d", id, "--", "true");
            Assert.True(d.ExitCode == 0, d.ToString());
            Assert.Contains((await W.VmsanJson("ps", id)).GetProperty("execs").EnumerateArray(), e => e.GetProperty("id").GetString() == d.Stdout.Trim());
        }
        // The source's table is untouched.
        Assert.Contains((await W.VmsanJson("ps", vm.Source)).GetProperty("execs").EnumerateArray(),
            e => e.GetProperty("id").GetString() == vm.SourceExec && e.GetProperty("state").GetString() == "running");
    }

    [Fact]
    public async Task The_source_token_is_refused_by_a_clone()
    {
        var id = vm.Clones[0];
        var pid = (await W.VmsanJson("get", id)).GetProperty("pid").GetInt32();
        string Curl(string token) =>
            $"nsenter --net=/proc/{pid}/ns/net curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {token}' http://172.30.0.2:9119/execs";
        Assert.Equal("403", (await Sh.Bash(Curl(Token(vm.Source)))).Stdout.Trim());
        Assert.Equal("200", (await Sh.Bash(Curl(Token(id)))).Stdout.Trim());
    }

    [Fact]
    public async Task A_clones_disk_writes_reach_neither_its_siblings_nor_the_source()
    {
        await Exec(vm.Clones[0], "echo mine > /home/user/only-a; sync");
        foreach (var other in vm.Clones.Skip(1).Append(vm.Source))
            Assert.Equal("absent\n", await Exec(other, "cat /home/user/only-a 2>/dev/null || echo absent"));
        Assert.Equal("disk-before\n", await Exec(vm.Source, "cat /home/user/d"));
    }

    [Fact]
    public async Task A_snapshot_in_use_is_not_removed_and_bad_names_are_typed_errors()
    {
        var rm = await W.Vmsan("snapshot", "rm", "--json", "t1");
        Assert.Equal(1, rm.ExitCode);
        Assert.Equal("SNAPSHOT_IN_USE", JsonDocument.Parse(rm.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        var unknown = await W.Vmsan("create", "--json", "--snapshot", "nope");
        Assert.Equal("SNAPSHOT_NOT_FOUND", JsonDocument.Parse(unknown.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        var bad = await W.Vmsan("snapshot", "create", "--json", vm.Source, "--name", "Bad/Name");
        Assert.Equal("INVALID_ARGUMENT", JsonDocument.Parse(bad.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Single((await W.VmsanJson("snapshot", "list")).EnumerateArray());

        foreach (var id in vm.Clones)
            Assert.Equal(0, (await W.Vmsan("rm", "-f", id)).ExitCode);
        var ok = await W.Vmsan("snapshot", "rm", "t1");
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Empty((await W.VmsanJson("snapshot", "list")).EnumerateArray());
        // The source never depended on the snapshot's files.
        Assert.Equal("disk-before\nsource-after\n", await Exec(vm.Source, "cat /home/user/d /home/user/after"));
    }

    [Fact]
    public async Task Killing_vmsan_while_the_source_is_paused_for_a_snapshot_leaves_no_snapshot_and_a_running_source()
    {
        var kill = await Sh.Bash($$"""
            set -u
            ip netns exec {{W.HostNs}} env VMSAN_HOME={{W.Home}} VMSAN_CLI={{VmsanWorld.Cli}} VMSAN_FAULT_SNAPSHOT_HOLD_MS=60000 {{VmsanWorld.Cli}} snapshot create {{vm.Source}} --name killed >/dev/null 2>&1 &
            pid=$!
            # Killed once the VM is paused and the snapshot's files are written (the fault hold comes next).
            for i in $(seq 400); do ls {{W.Home}}/snapshots/.tmp-*/memory >/dev/null 2>&1 && break; sleep 0.05; done
            ls {{W.Home}}/snapshots/.tmp-*/memory >/dev/null 2>&1 || { echo never-paused; kill -9 $pid; exit 1; }
            kill -9 $pid; wait $pid 2>/dev/null; echo killed
            """);
        Assert.True(kill.Stdout.Contains("killed"), kill.ToString());
        // The next command notices the dead writer: the VM runs again, nothing half-made is listed or left.
        Assert.Equal("running", (await W.VmsanJson("get", vm.Source)).GetProperty("status").GetString());
        Assert.Equal("ok\n", await Exec(vm.Source, "echo ok > /home/user/after-kill && cat /home/user/after-kill"));
        Assert.Empty((await W.VmsanJson("snapshot", "list")).EnumerateArray());
        Assert.Empty(Directory.GetDirectories(Path.Combine(W.Home, "snapshots"), ".tmp-*"));
        Assert.False(W.State(vm.Source)!.Value.TryGetProperty("snapshotInProgress", out _));
        // And the source can be snapshotted again afterwards.
        var again = await W.Vmsan("snapshot", "create", vm.Source, "--name", "after-kill");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(0, (await W.Vmsan("snapshot", "rm", "after-kill")).ExitCode);
    }
}
