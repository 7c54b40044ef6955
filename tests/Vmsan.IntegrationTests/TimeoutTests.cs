using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Timeouts enforced by the VM's supervisor, on one VM: a 5 s timeout stops it; `vmsan timeout` resets it (kept
/// across pause/resume), a pause action pauses it, a remove action removes it, leaving nothing behind. Then a second
/// VM whose supervisor is SIGKILLed before its timeout expires: the next `list`, `get` or `doctor` applies each action
/// (stop gracefully, pause by persisting, remove).
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class TimeoutTests(TimeoutTests.Vm vm) : IClassFixture<TimeoutTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; set; } = "";

        public ValueTask InitializeAsync() => World.InitializeAsync();

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    private async Task<JsonElement> Get() => await W.VmsanJson("get", vm.Id);

    /// <summary>Polls `get` until the VM reaches <paramref name="status"/>; the timeout is generous (a loaded machine).</summary>
    private async Task<JsonElement> WaitFor(string status, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var vmJson = await Get();
            if (vmJson.GetProperty("status").GetString() == status)
                return vmJson;
            Assert.True(DateTime.UtcNow < deadline, $"{vm.Id} still {vmJson.GetProperty("status").GetString()} after {within.TotalSeconds} s: {vmJson}");
            await Task.Delay(250, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Bad_timeout_flags_are_typed_errors_before_anything_is_created()
    {
        foreach (var args in (string[][])[["--on-timeout", "pause"], ["--timeout", "5s", "--on-timeout", "explode"], ["--timeout", "soon"], ["--timeout", "0.2s"]])
        {
            var r = await W.Vmsan(["create", "--json", .. args]);
            Assert.Equal(1, r.ExitCode);
            Assert.Equal("INVALID_ARGUMENT", JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        Assert.Empty((await W.VmsanJson("list")).EnumerateArray());
    }

    [Fact]
    public async Task A_5_second_timeout_stops_the_vm()
    {
        var created = await W.VmsanJson("create", "--memory", "256", "--timeout", "5s");
        vm.Id = created.GetProperty("id").GetString()!;
        var expires = created.GetProperty("createdAt").GetDateTimeOffset() + TimeSpan.FromSeconds(5);
        if (created.TryGetProperty("expiresAt", out var createdExpiry))
        {
            Assert.Equal(expires, createdExpiry.GetDateTimeOffset());
            Assert.Equal("stop", created.GetProperty("onTimeout").GetString());
        }
        else
        {
            // A boot slower than 5 s (a loaded machine): the timeout fired before create saw the VM running, and
            // create returned the VM it made (not VM_BOOT_FAILED).
            Assert.True(created.TryGetProperty("timedOutAt", out _), created.ToString());
        }
        // Listed with its expiry while it has not fired (a slow boot on a loaded machine may already be past it).
        var listed = (await W.VmsanJson("list")).EnumerateArray().Single();
        if (listed.TryGetProperty("expiresAt", out var listedExpiry))
            Assert.Equal(expires, listedExpiry.GetDateTimeOffset());
        else
            Assert.True(listed.TryGetProperty("timedOutAt", out _), listed.ToString());

        var stopped = await WaitFor("stopped", TimeSpan.FromSeconds(90));
        Assert.StartsWith("timed out at", stopped.GetProperty("stopReason").GetString());
        Assert.True(stopped.TryGetProperty("timedOutAt", out var at) && at.GetDateTimeOffset() >= expires, stopped.ToString());
        Assert.False(stopped.TryGetProperty("expiresAt", out _), "a fired timeout is cleared");
    }

    [Fact]
    public async Task Vmsan_timeout_resets_the_expiry_which_pause_and_resume_keep_and_a_pause_action_pauses()
    {
        Assert.Equal(0, (await W.Vmsan("start", vm.Id)).ExitCode);
        var set = await W.VmsanJson("timeout", vm.Id, "1h");
        var expires = set.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(55), TimeSpan.FromMinutes(61));
        Assert.Equal(0, (await W.Vmsan("pause", vm.Id)).ExitCode);
        Assert.Equal(0, (await W.Vmsan("resume", vm.Id)).ExitCode);
        Assert.Equal(expires, (await Get()).GetProperty("expiresAt").GetDateTimeOffset());

        await W.VmsanJson("timeout", vm.Id, "2s", "--on-timeout", "pause");
        var paused = await WaitFor("paused", TimeSpan.FromSeconds(60));
        Assert.True(paused.TryGetProperty("timedOutAt", out _), paused.ToString());
        var exec = await W.Vmsan("exec", "--json", vm.Id, "true");
        Assert.Equal("VM_PAUSED", JsonDocument.Parse(exec.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_remove_action_removes_the_vm_and_leaves_nothing()
    {
        var cleared = await W.VmsanJson("timeout", vm.Id, "off");
        Assert.False(cleared.TryGetProperty("expiresAt", out _));
        await W.VmsanJson("timeout", vm.Id, "2s", "--on-timeout", "remove");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while ((await W.VmsanJson("list")).EnumerateArray().Any())
        {
            Assert.True(DateTime.UtcNow < deadline, "the VM was not removed at its timeout");
            await Task.Delay(250, TestContext.Current.CancellationToken);
        }
        Assert.Empty(await W.Leftovers(vm.Id));
    }

    /// <summary>
    /// Whether the process runs: a zombie is dead (its parent, the SIGKILLed supervisor, is gone, and whoever inherits
    /// it may reap it late).
    /// </summary>
    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sets a short timeout with <paramref name="action"/>, SIGKILLs the supervisor at once (not the VMM) and waits
    /// until the expiry has passed, checking that nobody acted meanwhile: the VMM still runs, the state still says it.
    /// </summary>
    private async Task<int> KillSupervisorAndLetTheTimeoutExpire(string action)
    {
        var set = await W.VmsanJson("timeout", vm.Id, "4s", "--on-timeout", action);
        var st = W.State(vm.Id)!.Value;
        var supervisor = st.GetProperty("supervisor").GetProperty("pid").GetInt32();
        var vmm = st.GetProperty("vmm").GetProperty("pid").GetInt32();
        await Sh.Check($"kill -9 {supervisor}");
        var expires = set.GetProperty("expiresAt").GetDateTimeOffset();
        var wait = expires - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1.5);
        if (wait > TimeSpan.Zero)
            await Task.Delay(wait, TestContext.Current.CancellationToken);
        // No vmsan command ran since the kill: the expiry passed with nobody to enforce it.
        Assert.True(Alive(vmm), "the VMM died with its supervisor: this test would prove nothing");
        Assert.True(W.State(vm.Id)!.Value.TryGetProperty("expiresAt", out _), "the timeout fired without its supervisor?");
        return vmm;
    }

    [Fact]
    public async Task A_dead_supervisors_expired_stop_timeout_is_applied_by_the_next_list_gracefully()
    {
        vm.Id = await W.CreateVm();
        // Not synced by hand: only a graceful stop (the agent syncs and remounts read-only) keeps it.
        Assert.Equal(0, (await W.Vmsan("exec", vm.Id, "sh", "-c", "echo kept > /home/user/kept")).ExitCode);
        var vmm = await KillSupervisorAndLetTheTimeoutExpire("stop");

        var listed = (await W.VmsanJson("list")).EnumerateArray().Single(v => v.GetProperty("id").GetString() == vm.Id);
        Assert.Equal("stopped", listed.GetProperty("status").GetString());
        var reason = listed.GetProperty("stopReason").GetString()!;
        Assert.StartsWith("timed out at", reason);
        Assert.Contains("supervisor", reason);
        Assert.True(listed.TryGetProperty("timedOutAt", out _), listed.ToString());
        Assert.False(listed.TryGetProperty("expiresAt", out _), "a fired timeout is cleared");
        Assert.False(Alive(vmm), "the VMM still runs after the timeout's stop");
        Assert.DoesNotContain(await W.Leftovers(vm.Id), l => !l.StartsWith("state dir", StringComparison.Ordinal));

        Assert.Equal(0, (await W.Vmsan("start", vm.Id)).ExitCode);
        var cat = await W.Vmsan("exec", vm.Id, "cat", "/home/user/kept");
        Assert.Equal("kept\n", cat.Stdout);
    }

    [Fact]
    public async Task A_dead_supervisors_expired_pause_timeout_persists_the_vm_at_the_next_get_and_resume_restores_it()
    {
        Assert.Equal(0, (await W.Vmsan("exec", vm.Id, "sh", "-c", "echo in-memory > /tmp/mark")).ExitCode);
        var vmm = await KillSupervisorAndLetTheTimeoutExpire("pause");

        var got = await Get();
        Assert.Equal("paused", got.GetProperty("status").GetString());
        Assert.True(got.TryGetProperty("persistedAt", out _), got.ToString());
        Assert.True(got.TryGetProperty("timedOutAt", out _), got.ToString());
        Assert.False(got.TryGetProperty("expiresAt", out _), "a fired timeout is cleared");
        Assert.False(Alive(vmm), "a persisted VM keeps no VMM");
        // Stays so: list does not reconcile a persisted VM to stopped.
        Assert.Equal("paused", (await W.VmsanJson("list")).EnumerateArray().Single(v => v.GetProperty("id").GetString() == vm.Id).GetProperty("status").GetString());

        Assert.Equal(0, (await W.Vmsan("resume", vm.Id)).ExitCode);
        var cat = await W.Vmsan("exec", vm.Id, "cat", "/tmp/mark");
        Assert.Equal("in-memory\n", cat.Stdout);
    }

    [Fact]
    public async Task A_dead_supervisors_expired_remove_timeout_is_applied_by_doctor_and_leaves_nothing()
    {
        await KillSupervisorAndLetTheTimeoutExpire("remove");

        var doctor = await W.Vmsan("doctor", "--json");
        var repaired = JsonDocument.Parse(doctor.Stdout).RootElement.GetProperty("repaired").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Contains(repaired, r => r.StartsWith(vm.Id, StringComparison.Ordinal) && r.Contains("removed", StringComparison.Ordinal));
        Assert.DoesNotContain((await W.VmsanJson("list")).EnumerateArray(), v => v.GetProperty("id").GetString() == vm.Id);
        Assert.Empty(await W.Leftovers(vm.Id));
    }
}
