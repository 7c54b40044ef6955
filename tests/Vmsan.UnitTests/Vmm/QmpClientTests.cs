using System.Diagnostics;
using System.Text.Json.Nodes;
using Vmsan.Core.Errors;
using Vmsan.UnitTests.Support;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

public class QmpClientTests
{
    /// <summary>Bounds every wait, so a client bug fails the test instead of hanging the run.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<QmpClient> ConnectAsync(string path, TimeSpan? timeout = null) =>
        QmpClient.ConnectAsync(path, timeout ?? TimeSpan.FromSeconds(5), Ct).WaitAsync(Bound, Ct);

    [Fact]
    public async Task Connect_reads_the_greeting_and_negotiates_capabilities()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));

        await using var client = await ConnectAsync(server.Path);

        var first = Assert.Single(server.Received);
        Assert.Equal("qmp_capabilities", first["execute"]!.GetValue<string>());
        Assert.NotNull(first["id"]);
    }

    [Fact]
    public async Task A_command_returns_its_return_value_and_sends_its_arguments()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => cmd["execute"]!.GetValue<string>() switch
        {
            "query-status" => [FakeQmpServer.Reply(cmd, new JsonObject { ["status"] = "running", ["running"] = true })],
            _ => [FakeQmpServer.Reply(cmd, new JsonObject())],
        };
        await using var client = await ConnectAsync(server.Path);

        var status = await client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct);
        await client.ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = "info status" }, Ct).WaitAsync(Bound, Ct);

        Assert.Equal("running", status!["status"]!.GetValue<string>());
        var hmp = server.Received.Last();
        Assert.Equal("info status", hmp["arguments"]!["command-line"]!.GetValue<string>());
    }

    [Fact]
    public async Task Replies_are_matched_to_commands_by_id_even_out_of_order()
    {
        // Arrange: hold the first reply until the second command arrives, then answer both in reverse.
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        JsonObject? held = null;
        server.Handler = (cmd, _) =>
        {
            var name = cmd["execute"]!.GetValue<string>();
            if (name == "first")
            {
                held = cmd;
                return null;
            }
            if (name == "second")
                return [FakeQmpServer.Reply(cmd, "two"), FakeQmpServer.Reply(held!, "one")];
            return [FakeQmpServer.Reply(cmd, new JsonObject())];
        };
        await using var client = await ConnectAsync(server.Path);

        // Act
        var first = client.ExecuteAsync("first", null, Ct);
        while (held is null)
            await Task.Delay(5, Ct);
        var second = client.ExecuteAsync("second", null, Ct);

        // Assert
        Assert.Equal("one", (await first.WaitAsync(Bound, Ct))!.GetValue<string>());
        Assert.Equal("two", (await second.WaitAsync(Bound, Ct))!.GetValue<string>());
    }

    [Fact]
    public async Task A_qmp_error_becomes_VmmFailed_with_its_description()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => cmd["execute"]!.GetValue<string>() == "cont"
            ? [FakeQmpServer.Error(cmd, "GenericError", "Resetting the Virtual Machine is required")]
            : [FakeQmpServer.Reply(cmd, new JsonObject())];
        await using var client = await ConnectAsync(server.Path);

        var ex = await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => client.ExecuteAsync("cont", null, Ct).WaitAsync(Bound, Ct), requireFix: false);

        Assert.Contains("GenericError", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Resetting the Virtual Machine is required", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_are_recorded_in_order_with_their_data()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => cmd["execute"]!.GetValue<string>() == "system_powerdown"
            ?
            [
                FakeQmpServer.Event("POWERDOWN"),
                FakeQmpServer.Event("SHUTDOWN", new JsonObject { ["guest"] = true, ["reason"] = "guest-shutdown" }),
                FakeQmpServer.Reply(cmd, new JsonObject()),
            ]
            : [FakeQmpServer.Reply(cmd, new JsonObject())];
        await using var client = await ConnectAsync(server.Path);

        await client.ExecuteAsync("system_powerdown", null, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(["POWERDOWN", "SHUTDOWN"], client.Events.Select(e => e.Name));
        Assert.Equal("guest-shutdown", client.Events[1].Data!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Lines_that_are_not_json_objects_are_skipped()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => ["not json", "[1,2]", "{\"id\":\"unknown\",\"return\":{}}", FakeQmpServer.Reply(cmd, 42)];
        await using var client = await ConnectAsync(server.Path);

        var value = await client.ExecuteAsync("query-x", null, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(42, value!.GetValue<int>());
    }

    [Fact]
    public async Task The_server_closing_the_socket_fails_pending_commands_instead_of_hanging()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, conn) =>
        {
            if (cmd["execute"]!.GetValue<string>() == "quit")
            {
                conn.Close();
                return null;
            }
            return [FakeQmpServer.Reply(cmd, new JsonObject())];
        };
        await using var client = await ConnectAsync(server.Path);

        await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => client.ExecuteAsync("quit", null, Ct).WaitAsync(Bound, Ct), requireFix: false);
    }

    [Fact]
    public async Task A_command_sent_after_the_server_closed_fails_instead_of_hanging()
    {
        // Arrange: the VMM exits on its own (no command pending) and the read loop notices.
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, conn) =>
        {
            var replies = new[] { FakeQmpServer.Reply(cmd, new JsonObject()) };
            if (cmd["execute"]!.GetValue<string>() == "stop")
                _ = Task.Delay(50).ContinueWith(_ => conn.Close(), TaskScheduler.Default);
            return replies;
        };
        await using var client = await ConnectAsync(server.Path);
        await client.ExecuteAsync("stop", null, Ct).WaitAsync(Bound, Ct);
        await Task.Delay(300, Ct);

        // Act / Assert
        await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct), requireFix: false);
    }

    [Fact]
    public async Task Cancelling_a_command_cancels_only_that_wait()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => cmd["execute"]!.GetValue<string>() == "never" ? null : [FakeQmpServer.Reply(cmd, "ok")];
        await using var client = await ConnectAsync(server.Path);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(100);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ExecuteAsync("never", null, cts.Token).WaitAsync(Bound, Ct));
        var after = await client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct);

        Assert.Equal("ok", after!.GetValue<string>());
    }

    [Fact]
    public async Task Connect_retries_until_the_socket_appears()
    {
        // Arrange: the client starts first, like the supervisor racing QEMU's start-up.
        using var tmp = new TempDir();
        var path = tmp.Combine("qmp.sock");
        var connecting = QmpClient.ConnectAsync(path, TimeSpan.FromSeconds(5), Ct);
        await Task.Delay(200, Ct);
        Assert.False(connecting.IsCompleted);

        // Act
        await using var server = FakeQmpServer.Start(path);

        // Assert
        await using var client = await connecting.WaitAsync(Bound, Ct);
        Assert.Equal("qmp_capabilities", Assert.Single(server.Received)["execute"]!.GetValue<string>());
    }

    [Fact]
    public async Task Connect_fails_with_VmmFailed_after_its_timeout_when_no_socket_appears()
    {
        using var tmp = new TempDir();
        var sw = Stopwatch.StartNew();

        var ex = await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => ConnectAsync(tmp.Combine("qmp.sock"), TimeSpan.FromMilliseconds(300)));

        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(290), TimeSpan.FromSeconds(5));
        Assert.Contains("qmp.sock", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_that_is_not_qmp_is_rejected()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"), greeting: "SSH-2.0-OpenSSH_9.2");

        var ex = await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => ConnectAsync(server.Path), requireFix: false);

        Assert.Contains("greeting", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_sent_after_the_server_stopped_talking_fails_instead_of_hanging()
    {
        // Arrange: the read loop sees end of stream while the socket still takes writes, so
        // nothing will ever answer what is sent next.
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, conn) =>
        {
            if (cmd["execute"]!.GetValue<string>() == "stop")
            {
                _ = Task.Delay(50).ContinueWith(_ => conn.ShutdownSend(), TaskScheduler.Default);
                return [FakeQmpServer.Reply(cmd, new JsonObject())];
            }
            return cmd["execute"]!.GetValue<string>() == "qmp_capabilities" ? [FakeQmpServer.Reply(cmd, new JsonObject())] : null;
        };
        await using var client = await ConnectAsync(server.Path);
        await client.ExecuteAsync("stop", null, Ct).WaitAsync(Bound, Ct);
        await Task.Delay(300, Ct);

        // Act / Assert
        await ErrorAssert.ThrowsAsync(ErrorCode.VmmFailed, () => client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct), requireFix: false);
        Assert.Equal(0, client.PendingCount);
    }

    [Fact]
    public async Task A_malformed_event_is_skipped_and_later_replies_still_arrive()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        server.Handler = (cmd, _) => ["{\"event\":5}", "{\"id\":7,\"return\":{}}", FakeQmpServer.Reply(cmd, "ok")];
        await using var client = await ConnectAsync(server.Path);

        var value = await client.ExecuteAsync("query-x", null, Ct).WaitAsync(Bound, Ct);

        Assert.Equal("ok", value!.GetValue<string>());
    }

    [Fact]
    public async Task A_command_cancelled_before_it_is_written_leaves_nothing_pending()
    {
        using var tmp = new TempDir();
        await using var server = FakeQmpServer.Start(tmp.Combine("qmp.sock"));
        await using var client = await ConnectAsync(server.Path);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ExecuteAsync("query-status", null, cts.Token).WaitAsync(Bound, Ct));

        Assert.Equal(0, client.PendingCount);
    }
}
