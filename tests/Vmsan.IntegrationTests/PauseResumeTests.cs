using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>Pause and resume on one VM: vCPUs stop, exec is refused with the fix, memory and processes survive.</summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class PauseResumeTests(PauseResumeTests.Vm vm) : IClassFixture<PauseResumeTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; private set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Id = await World.CreateVm();
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    private async Task<string> Status() =>
        (await W.VmsanJson("get", vm.Id)).GetProperty("status").GetString()!;

    [Fact]
    public async Task A_paused_vm_is_listed_paused_and_exec_is_refused_with_VM_PAUSED()
    {
        var prep = await W.Vmsan("exec", vm.Id, "sh", "-c", "echo kept > /tmp/mem-marker; (while :; do date +%s%N > /tmp/tick; sleep 0.05; done) >/dev/null 2>&1 & echo $!");
        Assert.True(prep.ExitCode == 0, prep.ToString());

        var pause = await W.Vmsan("pause", vm.Id);
        Assert.True(pause.ExitCode == 0, pause.ToString());
        Assert.Equal(vm.Id, pause.Stdout.Trim());
        var list = await W.VmsanJson("list");
        Assert.Equal("paused", list.EnumerateArray().Single(v => v.GetProperty("id").GetString() == vm.Id).GetProperty("status").GetString());
        Assert.True(list.EnumerateArray().Single().TryGetProperty("pid", out _), "a paused VM still has its VMM");

        var exec = await W.Vmsan("exec", "--json", vm.Id, "true");
        Assert.Equal(1, exec.ExitCode);
        var err = JsonDocument.Parse(exec.Stdout).RootElement.GetProperty("error");
        Assert.Equal("VM_PAUSED", err.GetProperty("code").GetString());
        Assert.Contains($"vmsan resume {vm.Id}", err.GetProperty("fix").GetString());

        // Pausing twice is a no-op, not an error.
        Assert.Equal(0, (await W.Vmsan("pause", vm.Id)).ExitCode);
    }

    [Fact]
    public async Task The_guest_does_not_run_while_paused_and_resume_continues_with_memory_and_processes()
    {
        Assert.Equal("paused", await Status());
        // The VMM's vCPU threads are stopped: the guest's ticker writes nothing while paused.
        var before = await Sh.Bash($"pid=$(jq -r .vmm.pid {W.Home}/vms/{vm.Id}/vm.json); awk '{{print $14+$15}}' /proc/$pid/stat");
        await Task.Delay(1500, TestContext.Current.CancellationToken);
        var after = await Sh.Bash($"pid=$(jq -r .vmm.pid {W.Home}/vms/{vm.Id}/vm.json); awk '{{print $14+$15}}' /proc/$pid/stat");
        Assert.True(long.Parse(after.Stdout.Trim()) - long.Parse(before.Stdout.Trim()) < 50,
            $"a paused VMM burnt CPU: {before.Stdout.Trim()} -> {after.Stdout.Trim()} ticks");

        var resume = await W.Vmsan("resume", vm.Id);
        Assert.True(resume.ExitCode == 0, resume.ToString());
        Assert.Equal("running", await Status());
        var r = await W.Vmsan("exec", vm.Id, "sh", "-c", "cat /tmp/mem-marker; a=$(cat /tmp/tick); sleep 0.5; b=$(cat /tmp/tick); [ \"$a\" != \"$b\" ] && echo ticking");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("kept\nticking\n", r.Stdout);
        Assert.Equal(0, (await W.Vmsan("resume", vm.Id)).ExitCode);
    }

    [Fact]
    public async Task A_paused_vm_stops_gracefully_and_resume_of_a_stopped_vm_is_a_typed_error()
    {
        Assert.Equal(0, (await W.Vmsan("pause", vm.Id)).ExitCode);
        var stop = await W.Vmsan("stop", vm.Id);
        Assert.True(stop.ExitCode == 0, stop.ToString());
        Assert.Equal("stopped", await Status());
        var resume = await W.Vmsan("resume", "--json", vm.Id);
        Assert.Equal(1, resume.ExitCode);
        Assert.Equal("VM_NOT_RUNNING", JsonDocument.Parse(resume.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
        var pause = await W.Vmsan("pause", "--json", "vm-nothere0");
        Assert.Equal(1, pause.ExitCode);
    }
}
