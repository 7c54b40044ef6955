using System.Globalization;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// `pause --persist` on one VM: memory and device state go to disk and the VMM ends (RAM freed); `resume` restores
/// the same VM with its processes, tmpfs, disk, policy, ports and timeout, and its clock set to the host's.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class PersistTests(PersistTests.Vm vm) : IClassFixture<PersistTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; private set; } = "";
        public int Pid { get; set; }

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Id = await World.CreateVm("--network-policy", "deny-all", "-p", "127.0.0.1:18431:8080", "--timeout", "2h");
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    private async Task<string> Exec(string script)
    {
        var r = await W.Vmsan("exec", vm.Id, "sh", "-c", script);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    [Fact]
    public async Task Pause_persist_writes_memory_to_disk_and_ends_the_vmm()
    {
        await Exec("set -e; echo tmpfs-kept > /tmp/t; echo disk-kept > /home/user/d; sync; sleep 100000 >/dev/null 2>&1 & echo $! > /tmp/bgpid");
        var before = await W.VmsanJson("get", vm.Id);
        vm.Pid = before.GetProperty("pid").GetInt32();
        var r = await W.Vmsan("pause", "--persist", "--json", vm.Id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var paused = JsonDocument.Parse(r.Stdout).RootElement[0];
        Assert.Equal("paused", paused.GetProperty("status").GetString());
        Assert.True(paused.TryGetProperty("persistedAt", out _), paused.ToString());
        Assert.False(paused.TryGetProperty("pid", out _), "no VMM while persisted");
        Assert.False(Directory.Exists($"/proc/{vm.Pid}"), "the VMM process is gone");
        Assert.Empty(Directory.EnumerateFiles("/dev/shm", $"vmsan-*-{vm.Id}.mem"));
        Assert.True(File.Exists(Path.Combine(W.Home, "vms", vm.Id, "persisted", "memory")));
        Assert.DoesNotContain($"vmsan-{vm.Id[3..]}", (await Sh.Bash("ip netns list")).Stdout);
        // `list` keeps it paused (not reconciled to stopped), exec says VM_PAUSED.
        Assert.Equal("paused", (await W.VmsanJson("list")).EnumerateArray().Single().GetProperty("status").GetString());
        var exec = await W.Vmsan("exec", "--json", vm.Id, "true");
        Assert.Equal("VM_PAUSED", JsonDocument.Parse(exec.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Resume_restores_the_same_vm_with_memory_disk_policy_ports_and_timeout()
    {
        var before = await W.VmsanJson("get", vm.Id);
        var r = await W.Vmsan("resume", "--json", vm.Id);
        Assert.True(r.ExitCode == 0, r.ToString());
        var after = JsonDocument.Parse(r.Stdout).RootElement[0];
        Assert.Equal("running", after.GetProperty("status").GetString());
        Assert.False(after.TryGetProperty("persistedAt", out _));
        Assert.NotEqual(vm.Pid, after.GetProperty("pid").GetInt32());
        Assert.Equal("deny-all", after.GetProperty("networkPolicy").GetString());
        Assert.Equal("127.0.0.1:18431:8080/tcp", after.GetProperty("publishedPorts")[0].GetString());
        Assert.Equal(before.GetProperty("expiresAt").GetDateTimeOffset(), after.GetProperty("expiresAt").GetDateTimeOffset());

        var host0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var o = (await Exec("date +%s.%N; hostname; kill -0 $(cat /tmp/bgpid) && echo bg-alive; cat /tmp/t /home/user/d")).Split('\n');
        var host1 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        var guest = double.Parse(o[0], CultureInfo.InvariantCulture);
        Assert.True(guest > host0 - 1 && guest < host1 + 1, $"guest clock {guest:F3}, host {host0:F3}..{host1:F3}");
        Assert.Equal(vm.Id, o[1]);
        Assert.Equal("bg-alive", o[2]);
        Assert.Equal("tmpfs-kept", o[3]);
        Assert.Equal("disk-kept", o[4]);
        Assert.False(Directory.Exists(Path.Combine(W.Home, "vms", vm.Id, "persisted")));
        // The deny-all table is back in the VM's namespace.
        var pid = after.GetProperty("pid").GetInt32();
        Assert.Contains("table inet vmsan", (await Sh.Bash($"nsenter --net=/proc/{pid}/ns/net nft list tables")).Stdout);
        // And it can be persisted again.
        Assert.Equal(0, (await W.Vmsan("pause", "--persist", vm.Id)).ExitCode);
        Assert.Equal(0, (await W.Vmsan("resume", vm.Id)).ExitCode);
        Assert.Equal("disk-kept\n", await Exec("cat /home/user/d"));
    }

    [Fact]
    public async Task Removing_a_vm_leaves_nothing()
    {
        Assert.Equal(0, (await W.Vmsan("rm", "-f", vm.Id)).ExitCode);
        Assert.Empty(await W.Leftovers(vm.Id));
    }
}
