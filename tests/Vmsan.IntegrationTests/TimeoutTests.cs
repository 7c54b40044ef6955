using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Timeouts enforced by the VM's supervisor, on one VM: a 5 s timeout stops it; `vmsan timeout` resets it (kept
/// across pause/resume), a pause action pauses it, a remove action removes it, leaving nothing behind.
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
        var expires = created.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.Equal(TimeSpan.FromSeconds(5), expires - created.GetProperty("createdAt").GetDateTimeOffset());
        Assert.Equal("stop", created.GetProperty("onTimeout").GetString());
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
}
