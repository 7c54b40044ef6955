using System.Diagnostics;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// `vmsan exec` never hangs: a VM removed or killed under a running exec ends it at once with a typed code, and an
/// agent that stops answering (its QEMU frozen with SIGSTOP) ends it with AGENT_UNREACHABLE within a bound. Steps run
/// in order on one VM (frozen, thawed, then killed); the rm -f step boots its own.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class ExecNeverHangsTests(ExecNeverHangsTests.Vm vm) : IClassFixture<ExecNeverHangsTests.Vm>
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

    // The keepalive gives up after 5 s ping interval + 15 s pong timeout; the rest is slack for a loaded machine.
    private static readonly TimeSpan UnreachableBound = TimeSpan.FromSeconds(45);

    // "At once": the exec watches the VM's state file and VMM pid every 250 ms.
    private static readonly TimeSpan GoneBound = TimeSpan.FromSeconds(10);

    private VmsanWorld W => vm.World;

    private int VmmPid(string id) => W.State(id)!.Value.GetProperty("vmm").GetProperty("pid").GetInt32();

    /// <summary>Starts `vmsan exec ID -- sh -c 'echo ready; exec sleep 600'` and returns once "ready" arrived.</summary>
    private async Task<(Process Exec, Task<string> Stderr)> StartLongExecAsync(string id)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", W.HostNs, VmsanWorld.Cli, "exec", id, "--", "sh", "-c", "echo ready; exec sleep 600"])
            psi.ArgumentList.Add(a);
        psi.Environment["VMSAN_HOME"] = W.Home;
        var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var line = await p.StandardOutput.ReadLineAsync(cts.Token);
        Assert.Equal("ready", line);
        return (p, stderr);
    }

    private static async Task<TimeSpan> WaitEndAsync(Process p, TimeSpan bound)
    {
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(bound + TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"vmsan exec still running {sw.Elapsed.TotalSeconds:0} s later: it hangs");
        }
        TestContext.Current.SendDiagnosticMessage($"exec ended {sw.Elapsed.TotalSeconds:0.00} s after the fault");
        return sw.Elapsed;
    }

    [Fact]
    public async Task An_exec_on_a_vm_whose_qemu_is_frozen_ends_with_agent_unreachable_within_the_bound()
    {
        var (exec, stderr) = await StartLongExecAsync(vm.Id);
        using (exec)
        {
            var qemu = VmmPid(vm.Id);
            await Sh.Check($"kill -STOP {qemu}");
            try
            {
                var took = await WaitEndAsync(exec, UnreachableBound);
                var err = await stderr;
                Assert.True(exec.ExitCode == 1, $"exit {exec.ExitCode}: {err}");
                Assert.Contains("[AGENT_UNREACHABLE]", err);
                Assert.True(took < UnreachableBound, $"took {took.TotalSeconds:0.0} s: {err}");
            }
            finally
            {
                await Sh.Check($"kill -CONT {qemu}");
            }
        }

        // Thawed, the VM serves again: the freeze was the agent's silence, not a broken VM.
        var again = await W.Vmsan("exec", vm.Id, "true");
        Assert.True(again.ExitCode == 0, again.ToString());
    }

    [Fact]
    public async Task An_exec_on_a_vm_whose_qemu_is_killed_ends_at_once_with_vm_not_running()
    {
        var (exec, stderr) = await StartLongExecAsync(vm.Id);
        using (exec)
        {
            await Sh.Check($"kill -9 {VmmPid(vm.Id)}");
            var took = await WaitEndAsync(exec, GoneBound);
            var err = await stderr;
            Assert.True(exec.ExitCode == 1, $"exit {exec.ExitCode}: {err}");
            Assert.True(err.Contains("[VM_NOT_RUNNING]", StringComparison.Ordinal) || err.Contains("[AGENT_UNREACHABLE]", StringComparison.Ordinal), err);
            Assert.True(took < GoneBound, $"took {took.TotalSeconds:0.0} s: {err}");
        }
    }

    [Fact]
    public async Task An_exec_on_a_vm_removed_meanwhile_ends_at_once_with_vm_not_found()
    {
        var id = await W.CreateVm();
        var (exec, stderr) = await StartLongExecAsync(id);
        using (exec)
        {
            var rm = await W.Vmsan("rm", "-f", id);
            Assert.True(rm.ExitCode == 0, rm.ToString());
            var took = await WaitEndAsync(exec, GoneBound);
            var err = await stderr;
            Assert.True(exec.ExitCode == 1, $"exit {exec.ExitCode}: {err}");
            Assert.Contains("[VM_NOT_FOUND]", err);
            Assert.True(took < GoneBound, $"took {took.TotalSeconds:0.0} s after rm returned: {err}");
        }
        Assert.Empty(await W.Leftovers(id));
    }
}
