using System.Text.Json.Nodes;
using Vmsan.Core.Errors;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

/// <summary>The QMP client against a real QEMU (<c>-M none</c>: QMP without a guest, started in ~50 ms).</summary>
public class QmpClientQemuTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<QmpClient> ConnectAsync(QemuNone qemu) =>
        QmpClient.ConnectAsync(qemu.SocketPath, TimeSpan.FromSeconds(5), Ct).WaitAsync(Bound, Ct);

    [Fact]
    public async Task The_event_buffer_keeps_only_the_newest_events()
    {
        // Arrange: every stop/cont pair makes QEMU send a STOP and a RESUME event.
        using var qemu = new QemuNone();
        await using var client = await ConnectAsync(qemu);

        // Act
        for (var i = 0; i < 300; i++)
        {
            await client.ExecuteAsync("stop", null, Ct).WaitAsync(Bound, Ct);
            await client.ExecuteAsync("cont", null, Ct).WaitAsync(Bound, Ct);
        }
        await client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct);

        // Assert: bounded, newest last, nothing but the newest (strict STOP/RESUME alternation).
        var events = client.Events;
        Assert.Equal(QmpClient.MaxEvents, events.Count);
        Assert.Equal("RESUME", events[^1].Name);
        for (var i = 1; i <= events.Count; i++)
            Assert.Equal(i % 2 == 1 ? "RESUME" : "STOP", events[^i].Name);
    }

    [Fact]
    public async Task A_cancelled_command_leaves_nothing_pending_and_its_late_reply_is_ignored()
    {
        // Arrange: a frozen QEMU reads nothing and answers nothing until it is thawed.
        using var qemu = new QemuNone();
        await using var client = await ConnectAsync(qemu);
        qemu.Freeze(true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(200);

        // Act
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ExecuteAsync("query-status", null, cts.Token).WaitAsync(Bound, Ct));
        var pendingAfterCancel = client.PendingCount;
        qemu.Freeze(false);
        var status = await client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct);

        // Assert
        Assert.Equal(0, pendingAfterCancel);
        Assert.False(string.IsNullOrEmpty(status!["status"]!.GetValue<string>()));
        Assert.Equal(0, client.PendingCount);
    }

    [Fact]
    public async Task Killing_QEMU_with_commands_in_flight_fails_each_of_them_and_every_later_one()
    {
        // Arrange: eight writers keep commands in flight while QEMU is SIGKILLed under them.
        using var qemu = new QemuNone();
        await using var client = await ConnectAsync(qemu);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var failures = 0;
        var writers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    await client.ExecuteAsync("query-status", new JsonObject(), Ct).WaitAsync(Bound, Ct);
                }
                catch (VmsanException ex) when (ex.Code == ErrorCode.VmmFailed)
                {
                    Interlocked.Increment(ref failures);
                    return;
                }
            }
        }, Ct)).ToArray();
        await Task.Delay(200, Ct);

        // Act
        qemu.Kill();

        // Assert: every writer ends with VMM_FAILED (a TimeoutException from WaitAsync would be a hang).
        await Task.WhenAll(writers).WaitAsync(Bound, Ct);
        Assert.Equal(8, failures);
        for (var i = 0; i < 20; i++)
            await Assert.ThrowsAsync<VmsanException>(() => client.ExecuteAsync("query-status", null, Ct).WaitAsync(Bound, Ct));
        Assert.Equal(0, client.PendingCount);
    }
}
