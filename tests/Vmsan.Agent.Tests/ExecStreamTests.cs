using System.Text;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Tests;

/// <summary>Streaming exec over the WebSocket: stdin, signals, timeouts, detached execs, PTYs, sessions, users.</summary>
public sealed class ExecStreamTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 20_000;

    private AgentClient Client => fixture.Client;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(ExecResult Result, byte[] Stdout, string Stderr)> RunAsync(ExecRequest request, byte[]? stdin = null)
    {
        await using var exec = await Client.OpenExecAsync(request with { Stdin = stdin is not null }, Ct);
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var output = exec.CopyOutputAsync(stdout, stderr, Ct);
        if (stdin is not null)
        {
            for (var i = 0; i < stdin.Length; i += 100_000)
            {
                await exec.WriteStdinAsync(stdin.AsMemory(i, Math.Min(100_000, stdin.Length - i)), Ct);
            }

            await exec.CloseStdinAsync(Ct);
        }

        var result = await output;
        return (result, stdout.ToArray(), Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [Fact(Timeout = Timeout)]
    public async Task Stdin_streams_in_and_eof_ends_it()
    {
        var (result, stdout, _) = await RunAsync(new ExecRequest(["tr", "a-z", "A-Z"]), "hello world\n"u8.ToArray());

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("HELLO WORLD\n", Encoding.UTF8.GetString(stdout));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_megabyte_of_binary_goes_in_and_comes_back_byte_exact_with_stderr_apart()
    {
        var data = new byte[1024 * 1024 + 3];
        Random.Shared.NextBytes(data);

        var (result, stdout, stderr) = await RunAsync(new ExecRequest(["sh", "-c", "cat; echo done >&2"]), data);

        Assert.Equal(0, result.ExitCode);
        Assert.True(data.AsSpan().SequenceEqual(stdout), $"stdout differs ({stdout.Length} bytes)");
        Assert.Equal("done\n", stderr);
    }

    [Fact(Timeout = Timeout)]
    public async Task Sigint_interrupts_sleep_with_130()
    {
        await using var exec = await Client.OpenExecAsync(new ExecRequest(["sleep", "30"]), Ct);
        var started = new TaskCompletionSource();
        exec.Started += _ => started.TrySetResult();
        var output = exec.CopyOutputAsync(null, null, Ct);
        await started.Task.WaitAsync(Ct);

        await exec.SignalAsync(2, Ct);
        var result = await output;

        Assert.Equal(130, result.ExitCode);
        Assert.Equal(2, result.Signal);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_timeout_kills_the_whole_group_with_124()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"vmsan-bg-{Guid.NewGuid():N}");
        var (result, _, _) = await RunAsync(new ExecRequest(["sh", "-c", $"(sleep 2; touch {marker}) & sleep 30"], TimeoutMs: 300));

        Assert.Equal(124, result.ExitCode);
        Assert.True(result.TimedOut);
        await Task.Delay(2500, Ct);
        Assert.False(File.Exists(marker), "the background child survived the timeout");
    }

    [Fact(Timeout = Timeout)]
    public async Task Disconnecting_a_plain_exec_kills_its_group()
    {
        string id;
        await using (var exec = await Client.OpenExecAsync(new ExecRequest(["sleep", "30"]), Ct))
        {
            var started = new TaskCompletionSource();
            exec.Started += _ => started.TrySetResult();
            _ = exec.CopyOutputAsync(null, null, Ct);
            await started.Task.WaitAsync(Ct);
            id = exec.Id!;
            Assert.Contains(await Client.ListExecsAsync(Ct), e => e.Id == id && e.State == "running");
        }

        await WaitUntilAsync(async () => !(await Client.ListExecsAsync(Ct)).Any(e => e.Id == id));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_detached_exec_replays_its_output_then_streams_live_and_reports_the_exit()
    {
        var gate = Path.Combine(Path.GetTempPath(), $"vmsan-gate-{Guid.NewGuid():N}");
        var info = await Client.StartDetachedAsync(new ExecRequest(["sh", "-c", $"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after; exit 7"]), Ct);
        Assert.StartsWith("e-", info.Id, StringComparison.Ordinal);
        Assert.Equal("running", info.State);
        await Task.Delay(300, Ct);

        await using var attached = await Client.AttachExecAsync(info.Id, Ct);
        var stdout = new MemoryStream();
        var output = attached.CopyOutputAsync(stdout, null, Ct);
        await WaitUntilAsync(() => Task.FromResult(Encoding.UTF8.GetString(stdout.ToArray()) == "before\n"));
        await File.WriteAllTextAsync(gate, "", Ct);
        var result = await output;
        File.Delete(gate);

        Assert.Equal(7, result.ExitCode);
        Assert.Equal("before\nafter\n", Encoding.UTF8.GetString(stdout.ToArray()));
        var listed = Assert.Single(await Client.ListExecsAsync(Ct), e => e.Id == info.Id);
        Assert.Equal("exited", listed.State);
        Assert.Equal(7, listed.ExitCode);

        // Attaching after the exit still gets the output and the status.
        await using var late = await Client.AttachExecAsync(info.Id, Ct);
        var again = new MemoryStream();
        Assert.Equal(7, (await late.CopyOutputAsync(again, null, Ct)).ExitCode);
        Assert.Equal("before\nafter\n", Encoding.UTF8.GetString(again.ToArray()));
    }

    [Fact(Timeout = Timeout)]
    public async Task Kill_signals_a_detached_exec_and_ps_shows_it_exited()
    {
        var info = await Client.StartDetachedAsync(new ExecRequest(["sleep", "30"]), Ct);

        await Client.SignalExecAsync(info.Id, 15, Ct);

        await WaitUntilAsync(async () => (await Client.ListExecsAsync(Ct)).Single(e => e.Id == info.Id).State == "exited");
        var listed = (await Client.ListExecsAsync(Ct)).Single(e => e.Id == info.Id);
        Assert.Equal(143, listed.ExitCode);
        Assert.Equal(15, listed.Signal);
        var error = await Assert.ThrowsAsync<AgentException>(() => Client.SignalExecAsync(info.Id, 15, Ct));
        Assert.Equal(AgentErrorCodes.ExecExited, error.Code);
        error = await Assert.ThrowsAsync<AgentException>(() => Client.SignalExecAsync("e-nothere", 15, Ct));
        Assert.Equal(AgentErrorCodes.ExecNotFound, error.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_tty_exec_runs_on_a_pts_with_the_requested_size_and_follows_resizes()
    {
        await using var exec = await Client.OpenExecAsync(new ExecRequest(["sh", "-c", "tty; stty size; read x; stty size"], Tty: true, Stdin: true, Cols: 100, Rows: 30), Ct);
        var stdout = new MemoryStream();
        var output = exec.CopyOutputAsync(stdout, null, Ct);
        await WaitUntilAsync(() => Task.FromResult(Encoding.UTF8.GetString(stdout.ToArray()).Contains("30 100", StringComparison.Ordinal)));

        await exec.ResizeAsync(120, 40, Ct);
        await exec.WriteStdinAsync("go\r"u8.ToArray(), Ct);
        var result = await output;

        var text = Encoding.UTF8.GetString(stdout.ToArray());
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^/dev/pts/\d+\r\n30 100\r\n", text);
        Assert.Contains("40 120", text, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Ctrl_c_on_a_tty_interrupts_sleep()
    {
        await using var exec = await Client.OpenExecAsync(new ExecRequest(["sleep", "30"], Tty: true, Stdin: true), Ct);
        var started = new TaskCompletionSource();
        exec.Started += _ => started.TrySetResult();
        var output = exec.CopyOutputAsync(null, null, Ct);
        await started.Task.WaitAsync(Ct);
        await Task.Delay(200, Ct);

        await exec.WriteStdinAsync(new byte[] { 0x03 }, Ct);

        Assert.Equal(130, (await output).ExitCode);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_named_session_survives_a_disconnect_and_two_viewers_see_the_same_output()
    {
        var name = $"s{Guid.NewGuid():N}"[..12];
        var first = await Client.OpenExecAsync(new ExecRequest([], Tty: true, Stdin: true, Session: name), Ct);
        var firstOut = new MemoryStream();
        _ = first.CopyOutputAsync(firstOut, null, Ct);
        await first.WriteStdinAsync("echo one-$((40+2))\r"u8.ToArray(), Ct);
        await WaitUntilAsync(() => Task.FromResult(Encoding.UTF8.GetString(firstOut.ToArray()).Contains("one-42", StringComparison.Ordinal)));
        await first.DisposeAsync();
        await Task.Delay(200, Ct);

        await using var second = await Client.OpenExecAsync(new ExecRequest([], Tty: true, Stdin: true, Session: name), Ct);
        await using var third = await Client.AttachExecAsync(name, Ct);
        var secondOut = new MemoryStream();
        var thirdOut = new MemoryStream();
        var secondDone = second.CopyOutputAsync(secondOut, null, Ct);
        var thirdDone = third.CopyOutputAsync(thirdOut, null, Ct);
        await WaitUntilAsync(() => Task.FromResult(Encoding.UTF8.GetString(secondOut.ToArray()).Contains("one-42", StringComparison.Ordinal)));

        await third.WriteStdinAsync("echo two-$((50+5)); exit 3\r"u8.ToArray(), Ct);

        Assert.Equal(3, (await secondDone).ExitCode);
        Assert.Equal(3, (await thirdDone).ExitCode);
        Assert.Contains("two-55", Encoding.UTF8.GetString(secondOut.ToArray()), StringComparison.Ordinal);
        Assert.Contains("two-55", Encoding.UTF8.GetString(thirdOut.ToArray()), StringComparison.Ordinal);
        Assert.Contains("one-42", Encoding.UTF8.GetString(thirdOut.ToArray()), StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task User_switching_runs_as_nobody_with_its_home_and_root_as_root()
    {
        var (nobody, stdout, _) = await RunAsync(new ExecRequest(["sh", "-c", "id -u; id -g; echo $HOME $USER; pwd"], User: "nobody"));
        Assert.Equal(0, nobody.ExitCode);
        var lines = Encoding.UTF8.GetString(stdout).Split('\n');
        Assert.Equal("65534", lines[0]);
        Assert.Equal("65534", lines[1]);
        Assert.Equal("/nonexistent nobody", lines[2]);
        Assert.Equal("/", lines[3]);

        var (root, rootOut, _) = await RunAsync(new ExecRequest(["id", "-u"], User: "root"));
        Assert.Equal(0, root.ExitCode);
        Assert.Equal("0\n", Encoding.UTF8.GetString(rootOut));

        var (numeric, numericOut, _) = await RunAsync(new ExecRequest(["id", "-u"], User: "4242:4242"));
        Assert.Equal(0, numeric.ExitCode);
        Assert.Equal("4242\n", Encoding.UTF8.GetString(numericOut));

        // And the agent's own threads are root again afterwards.
        var (after, afterOut, _) = await RunAsync(new ExecRequest(["id", "-u"]));
        Assert.Equal("0\n", Encoding.UTF8.GetString(afterOut));
        Assert.Equal(0, after.ExitCode);
    }

    [Fact(Timeout = Timeout)]
    public async Task An_unknown_user_is_USER_NOT_FOUND()
    {
        var error = await Assert.ThrowsAsync<AgentException>(() => RunAsync(new ExecRequest(["true"], User: "no-such-user-x")));
        Assert.Equal(AgentErrorCodes.UserNotFound, error.Code);
        error = await Assert.ThrowsAsync<AgentException>(() => Client.ExecAsync(new ExecRequest(["true"], User: "no-such-user-x"), null, null, Ct));
        Assert.Equal(AgentErrorCodes.UserNotFound, error.Code);
        error = await Assert.ThrowsAsync<AgentException>(() => Client.StartDetachedAsync(new ExecRequest(["true"], User: "no-such-user-x"), Ct));
        Assert.Equal(AgentErrorCodes.UserNotFound, error.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_tty_as_nobody_can_open_its_terminal()
    {
        await using var exec = await Client.OpenExecAsync(new ExecRequest(["sh", "-c", "id -u; tty"], User: "nobody", Tty: true), Ct);
        var stdout = new MemoryStream();
        var result = await exec.CopyOutputAsync(stdout, null, Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^65534\r\n/dev/pts/\d+", Encoding.UTF8.GetString(stdout.ToArray()));
    }

    [Fact(Timeout = Timeout)]
    public async Task Wrong_or_missing_tokens_are_refused_on_the_websocket_and_the_rest()
    {
        using var anonymous = fixture.Agent.CreateClient(null);
        using var wrong = fixture.Agent.CreateClient("wrong");

        Assert.Equal(AgentErrorReason.Unauthorized, (await Assert.ThrowsAsync<AgentException>(() => anonymous.OpenExecAsync(new ExecRequest(["true"]), Ct))).Reason);
        Assert.Equal(AgentErrorReason.Forbidden, (await Assert.ThrowsAsync<AgentException>(() => wrong.OpenExecAsync(new ExecRequest(["true"]), Ct))).Reason);
        Assert.Equal(AgentErrorReason.Forbidden, (await Assert.ThrowsAsync<AgentException>(() => wrong.AttachExecAsync("e-1", Ct))).Reason);
        Assert.Equal(AgentErrorReason.Unauthorized, (await Assert.ThrowsAsync<AgentException>(() => anonymous.ListExecsAsync(Ct))).Reason);
        Assert.Equal(AgentErrorReason.Forbidden, (await Assert.ThrowsAsync<AgentException>(() => wrong.StartDetachedAsync(new ExecRequest(["true"]), Ct))).Reason);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 10 s");
            await Task.Delay(25, Ct);
        }
    }
}
