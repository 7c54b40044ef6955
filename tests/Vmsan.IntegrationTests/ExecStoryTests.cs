using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>Issue 3's exec stories through the real CLI against one real VM.</summary>
public sealed class ExecStoryTests(ExecStoryTests.Vm vm) : IClassFixture<ExecStoryTests.Vm>
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

    [Fact]
    public async Task Stdin_streams_into_the_command_with_exec_i()
    {
        var r = await W.VmsanStdin("hello\nworld\n", "exec", "-i", vm.Id, "--", "tr", "a-z", "A-Z");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("HELLO\nWORLD\n", r.Stdout);
    }

    [Fact]
    public async Task Binary_output_arrives_byte_exact()
    {
        var bytes = await W.VmsanBytes("exec", vm.Id, "--", "sh", "-c", "head -c 1000000 /dev/urandom | tee /tmp/blob");
        Assert.Equal(1_000_000, bytes.Length);
        var local = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var remote = await W.Vmsan("exec", vm.Id, "--", "sha256sum", "/tmp/blob");
        Assert.StartsWith(local, remote.Stdout);
    }

    [Fact]
    public async Task Env_workdir_and_user_are_applied()
    {
        var r = await W.Vmsan("exec", "-e", "FOO=bar", "-w", "/tmp", "--user", "root", vm.Id, "--", "sh", "-c", "env; id -un; pwd");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("FOO=bar\n", r.Stdout);
        Assert.EndsWith("root\n/tmp\n", r.Stdout);
    }

    [Fact]
    public async Task Commands_run_as_the_unprivileged_user_by_default()
    {
        var r = await W.Vmsan("exec", vm.Id, "--", "sh", "-c", "id -un; echo $HOME; pwd");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("user\n/home/user\n/home/user\n", r.Stdout);
        var denied = await W.Vmsan("exec", vm.Id, "--", "sh", "-c", "touch /root/x");
        Assert.NotEqual(0, denied.ExitCode);
    }

    [Fact]
    public async Task Timeout_exits_124_and_kills_the_process_group()
    {
        var sw = Stopwatch.StartNew();
        var r = await W.Vmsan("exec", "--timeout", "2s", vm.Id, "--", "sh", "-c", "sleep 60 & sleep 60");
        Assert.Equal(124, r.ExitCode);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
        var left = await W.Vmsan("exec", "--user", "root", vm.Id, "--", "sh", "-c", "pgrep -x sleep || true");
        Assert.Equal("", left.Stdout.Trim());
    }

    /// <summary>
    /// Sends SIGINT to `vmsan exec ID -- sh -c SCRIPT` once SCRIPT has printed "ready" (so the signal can only reach
    /// vmsan's forwarding, never a vmsan that is still starting and would die of it) and returns vmsan's exit code.
    /// </summary>
    private async Task<int> CtrlCAsync(string script)
    {
        // Started with SIGINT at its default disposition, as a user's terminal gives it (see StartVmsan).
        using var p = W.StartVmsan("exec", vm.Id, "--", "sh", "-c", script);
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Assert.Equal("ready", await p.StandardOutput.ReadLineAsync(cts.Token));
        await Sh.Check($"kill -INT {p.Id}");
        await p.WaitForExitAsync(cts.Token);
        TestContext.Current.SendDiagnosticMessage($"exit {p.ExitCode}; stderr: {await stderr}");
        return p.ExitCode;
    }

    [Fact]
    public async Task Ctrl_c_reaches_the_remote_command_which_decides_the_exit_status()
    {
        // A remote trap turns SIGINT into exit 42: 42 can only come from the remote shell, never from vmsan dying of
        // the signal itself (which would read 130, like a remote death by SIGINT).
        Assert.Equal(42, await CtrlCAsync("trap 'exit 42' INT; echo ready; while :; do sleep 0.1; done"));
    }

    [Fact]
    public async Task Ctrl_c_waits_for_a_remote_command_that_takes_seconds_to_finish_after_it()
    {
        // vmsan's own interrupt handling (the first Ctrl-C cancels a command, the second kills vmsan) stays out of a
        // stream: the signal is the remote command's, and vmsan waits for it to end however long that takes.
        Assert.Equal(42, await CtrlCAsync("trap 'sleep 3; exit 42' INT; echo ready; while :; do sleep 0.1; done"));
    }

    [Fact]
    public async Task Ctrl_c_kills_a_plain_remote_command_and_exits_130()
    {
        Assert.Equal(130, await CtrlCAsync("echo ready; exec sleep 30"));
        var left = await W.Vmsan("exec", "--user", "root", vm.Id, "--", "sh", "-c", "pgrep -x sleep || true");
        Assert.Equal("", left.Stdout.Trim());
    }

    [Fact]
    public async Task A_detached_exec_can_be_listed_reattached_and_killed()
    {
        var d = await W.Vmsan("exec", "-d", vm.Id, "--", "sh", "-c", "echo start; sleep 3; echo end; exit 5");
        Assert.True(d.ExitCode == 0, d.ToString());
        var execId = d.Stdout.Trim();
        Assert.False(string.IsNullOrEmpty(execId));

        var ps = await W.VmsanJson("ps", vm.Id);
        Assert.Contains(ps.GetProperty("execs").EnumerateArray(), e => e.GetProperty("id").GetString() == execId);

        var attach = await W.Vmsan("exec", "attach", vm.Id, execId);
        Assert.Equal(5, attach.ExitCode);
        Assert.Equal("start\nend\n", attach.Stdout);

        var longJob = (await W.Vmsan("exec", "-d", vm.Id, "--", "sleep", "300")).Stdout.Trim();
        var kill = await W.Vmsan("kill", vm.Id, longJob, "KILL");
        Assert.True(kill.ExitCode == 0, kill.ToString());
        var after = await W.Vmsan("exec", "attach", vm.Id, longJob);
        Assert.Equal(137, after.ExitCode);
    }

    [Fact]
    public async Task Exec_with_a_tty_runs_on_a_pseudo_terminal()
    {
        // `script` gives the vmsan CLI a real terminal, as a user's shell would.
        var r = await Sh.RunAsync("script", ["-qec", $"ip netns exec {W.HostNs} {VmsanWorld.Cli} exec -it {vm.Id} -- sh -c 'tty; stty size'", "/dev/null"],
            new Dictionary<string, string> { ["VMSAN_HOME"] = W.Home, ["TERM"] = "xterm", ["COLUMNS"] = "100", ["LINES"] = "40" }, TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Matches(@"/dev/pts/\d+", r.Stdout);
    }
}
