using System.Text;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Tests;

public sealed class ExecTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 15_000;

    private AgentClient Client => fixture.Client;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(ExecResult Result, string Stdout, string Stderr)> RunAsync(ExecRequest request)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var result = await Client.ExecAsync(request, stdout, stderr, Ct);
        return (result, Encoding.UTF8.GetString(stdout.ToArray()), Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [Fact(Timeout = Timeout)]
    public async Task Stdout_and_stderr_stay_apart()
    {
        var (result, stdout, stderr) = await RunAsync(new ExecRequest(["sh", "-c", "echo out; echo err >&2; echo out2"]));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("out\nout2\n", stdout);
        Assert.Equal("err\n", stderr);
        Assert.NotNull(result.Pid);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_megabyte_of_binary_data_on_each_stream_arrives_byte_exact()
    {
        var dir = Directory.CreateTempSubdirectory("vmsan-agent-test-");
        try
        {
            var outData = new byte[1024 * 1024];
            var errData = new byte[1024 * 1024 + 17];
            Random.Shared.NextBytes(outData);
            Random.Shared.NextBytes(errData);
            await File.WriteAllBytesAsync(Path.Combine(dir.FullName, "out.bin"), outData, Ct);
            await File.WriteAllBytesAsync(Path.Combine(dir.FullName, "err.bin"), errData, Ct);
            using var stdout = new MemoryStream();
            using var stderr = new MemoryStream();

            var result = await Client.ExecAsync(new ExecRequest(["sh", "-c", "cat out.bin & cat err.bin >&2; wait"], Cwd: dir.FullName), stdout, stderr, Ct);

            Assert.Equal(0, result.ExitCode);
            Assert.True(outData.AsSpan().SequenceEqual(stdout.ToArray()), "stdout differs");
            Assert.True(errData.AsSpan().SequenceEqual(stderr.ToArray()), "stderr differs");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task The_exit_code_is_propagated()
    {
        var (result, _, _) = await RunAsync(new ExecRequest(["sh", "-c", "exit 7"]));

        Assert.Equal(new ExecResult(7, null, false, result.Pid), result);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_process_killed_by_a_signal_exits_with_128_plus_the_signal()
    {
        var (result, _, _) = await RunAsync(new ExecRequest(["sh", "-c", "kill -9 $$"]));

        Assert.Equal(137, result.ExitCode);
        Assert.Equal(9, result.Signal);
        Assert.False(result.TimedOut);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_missing_command_exits_127_with_a_message_on_stderr()
    {
        var (result, stdout, stderr) = await RunAsync(new ExecRequest(["no-such-command-vmsan"]));

        Assert.Equal(127, result.ExitCode);
        Assert.Null(result.Pid);
        Assert.Equal("", stdout);
        Assert.Contains("no-such-command-vmsan: command not found", stderr, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_missing_program_path_exits_127()
    {
        var (result, _, stderr) = await RunAsync(new ExecRequest(["/nonexistent/program"]));

        Assert.Equal(127, result.ExitCode);
        Assert.Contains("/nonexistent/program", stderr, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_file_that_is_not_executable_exits_126()
    {
        var file = Path.GetTempFileName();
        try
        {
            var (result, _, stderr) = await RunAsync(new ExecRequest([file]));

            Assert.Equal(126, result.ExitCode);
            Assert.Contains("Permission denied", stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_timeout_kills_the_whole_process_group_and_exits_124()
    {
        using var stdout = new MemoryStream();
        var started = DateTime.UtcNow;

        var result = await Client.ExecAsync(new ExecRequest(["sh", "-c", "sleep 30 & echo $!; wait"], TimeoutMs: 500), stdout, null, Ct);

        Assert.Equal(124, result.ExitCode);
        Assert.True(result.TimedOut);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        var grandchild = int.Parse(Encoding.ASCII.GetString(stdout.ToArray()).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(await ProcessGoneAsync(grandchild, TimeSpan.FromSeconds(5)), $"grandchild sleep {grandchild} survived the timeout");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_command_that_finishes_in_time_is_not_marked_timed_out()
    {
        var (result, stdout, _) = await RunAsync(new ExecRequest(["echo", "quick"], TimeoutMs: 5000));

        Assert.Equal(new ExecResult(0, null, false, result.Pid), result);
        Assert.Equal("quick\n", stdout);
    }

    [Fact(Timeout = Timeout)]
    public async Task Env_and_cwd_are_honoured_on_top_of_a_clean_default_environment()
    {
        var (result, stdout, _) = await RunAsync(new ExecRequest(
            ["sh", "-c", "echo \"$FOO|$HOME|$PATH\"; pwd"],
            Env: new Dictionary<string, string> { ["FOO"] = "bar baz" },
            Cwd: "/tmp"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("bar baz|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n", stdout);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_program_is_searched_in_the_requested_PATH()
    {
        var dir = Directory.CreateTempSubdirectory("vmsan-agent-path-");
        try
        {
            var script = Path.Combine(dir.FullName, "vmsan-hello");
            await File.WriteAllTextAsync(script, "#!/bin/sh\necho hello from path\n", Ct);
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute);

            var (result, stdout, _) = await RunAsync(new ExecRequest(["vmsan-hello"],
                Env: new Dictionary<string, string> { ["PATH"] = dir.FullName + ":/usr/bin:/bin" }));

            Assert.Equal(0, result.ExitCode);
            Assert.Equal("hello from path\n", stdout);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_missing_cwd_exits_126_with_a_message()
    {
        var (result, _, stderr) = await RunAsync(new ExecRequest(["true"], Cwd: "/nonexistent-vmsan-dir"));

        Assert.Equal(126, result.ExitCode);
        Assert.Contains("/nonexistent-vmsan-dir", stderr, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_agent_token_and_environment_never_reach_the_child()
    {
        var (result, stdout, _) = await RunAsync(new ExecRequest(["env"]));

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain(fixture.Agent.Token, stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("VMSAN_TOKEN", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(AgentFixture.Canary, stdout, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Stdin_is_empty()
    {
        var (result, stdout, _) = await RunAsync(new ExecRequest(["sh", "-c", "cat; echo done"]));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("done\n", stdout);
    }

    [Fact(Timeout = Timeout)]
    public async Task Signal_dispositions_are_reset_for_the_child()
    {
        // .NET ignores SIGPIPE (and more); an ignored disposition survives exec. The agent itself must ignore some
        // signal, or this test could not fail.
        var parentIgnored = SigIgn(File.ReadAllLines($"/proc/{fixture.Agent.Pid}/status"));
        Assert.NotEqual(0UL, parentIgnored);

        // grep is the spawned child itself (no shell in between that could reset anything).
        var (result, stdout, _) = await RunAsync(new ExecRequest(["grep", "^SigIgn:", "/proc/self/status"]));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(0UL, SigIgn(stdout.Split('\n')));
    }

    private static ulong SigIgn(IEnumerable<string> statusLines) =>
        ulong.Parse(statusLines.Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))[7..].Trim(), System.Globalization.NumberStyles.HexNumber,
            System.Globalization.CultureInfo.InvariantCulture);

    [Fact(Timeout = Timeout)]
    public async Task An_unknown_user_is_refused_with_an_error_frame()
    {
        var e = await Assert.ThrowsAsync<AgentException>(() => Client.ExecAsync(new ExecRequest(["id"], User: "no-such-user-x"), null, null, Ct));

        Assert.Equal(AgentErrorReason.Rejected, e.Reason);
        Assert.Equal(AgentErrorCodes.UserNotFound, e.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task Twenty_concurrent_execs_all_complete_with_their_own_output()
    {
        var runs = Enumerable.Range(0, 20).Select(async i =>
        {
            var (result, stdout, _) = await RunAsync(new ExecRequest(["sh", "-c", "sleep 0.2; echo $0", i.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
            return (i, result, stdout);
        });

        var results = await Task.WhenAll(runs);

        Assert.All(results, r =>
        {
            Assert.Equal(0, r.result.ExitCode);
            Assert.Equal($"{r.i}\n", r.stdout);
        });
    }

    [Fact(Timeout = Timeout)]
    public async Task A_client_that_disconnects_mid_exec_gets_its_process_group_killed()
    {
        using var client = fixture.Agent.CreateClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var stdout = new SignallingStream();
        var exec = client.ExecAsync(new ExecRequest(["sh", "-c", "sleep 60 & echo $$ $!; wait"]), stdout, null, cts.Token);
        var line = await stdout.FirstLine.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        var pids = line.Split(' ').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => exec);

        foreach (var pid in pids)
        {
            Assert.True(await ProcessGoneAsync(pid, TimeSpan.FromSeconds(5)), $"process {pid} survived the disconnect");
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_client_that_stops_reading_and_then_leaves_gets_its_process_group_killed()
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", fixture.Agent.Port, Ct);
        var json = "{\"cmd\":[\"yes\"]}";
        await socket.SendAsync(Encoding.Latin1.GetBytes(
            $"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nContent-Length: {json.Length}\r\n\r\n{json}"), Ct);
        var received = new StringBuilder();
        var buffer = new byte[4096];
        System.Text.RegularExpressions.Match started;
        while (!(started = System.Text.RegularExpressions.Regex.Match(received.ToString(), "\"pid\":([0-9]+)")).Success)
        {
            var n = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, Ct);
            Assert.NotEqual(0, n);
            received.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        var pid = int.Parse(started.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        // Read no more: the socket buffers and the agent's queue fill up and the output pump waits for room.
        await Task.Delay(500, Ct);
        socket.Close();

        Assert.True(await ProcessGoneAsync(pid, TimeSpan.FromSeconds(5)), $"process {pid} survived the disconnect");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_running_POST_exec_stays_out_of_the_exec_list()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var stdout = new SignallingStream();
        var exec = Client.ExecAsync(new ExecRequest(["sh", "-c", "echo $$; sleep 0.3"]), stdout, null, cts.Token);
        var pid = int.Parse(await stdout.FirstLine.WaitAsync(TimeSpan.FromSeconds(5), Ct), System.Globalization.CultureInfo.InvariantCulture);

        var listed = await Client.ListExecsAsync(Ct);

        Assert.DoesNotContain(listed, e => e.Pid == pid);
        Assert.Equal(0, (await exec).ExitCode);
    }

    [Fact(Timeout = Timeout)]
    public async Task Sequential_execs_on_one_pooled_client_all_succeed()
    {
        for (var i = 0; i < 5; i++)
        {
            var (result, stdout, _) = await RunAsync(new ExecRequest(["echo", $"{i}"]));
            Assert.Equal(0, result.ExitCode);
            Assert.Equal($"{i}\n", stdout);
        }
    }

    /// <summary>Gone, or a zombie nobody has reaped yet.</summary>
    internal static async Task<bool> ProcessGoneAsync(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var stat = await File.ReadAllTextAsync($"/proc/{pid}/stat");
                if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z'))
                {
                    return true;
                }
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                return true;
            }

            await Task.Delay(20);
        }

        return false;
    }

    private sealed class SignallingStream : MemoryStream
    {
        private readonly TaskCompletionSource<string> _line = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> FirstLine => _line.Task;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await base.WriteAsync(buffer, cancellationToken);
            var text = Encoding.ASCII.GetString(ToArray());
            if (text.Contains('\n', StringComparison.Ordinal))
            {
                _line.TrySetResult(text[..text.IndexOf('\n', StringComparison.Ordinal)]);
            }
        }
    }
}
