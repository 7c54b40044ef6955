using System.Diagnostics;
using Vmsan.Core.State;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.State;

public class ProcessProbeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Process StartSleeper(string exe = "sleep") =>
        Process.Start(new ProcessStartInfo(exe, "30") { UseShellExecute = false })!;

    private static async Task StopAsync(Process p)
    {
        if (!p.HasExited)
            p.Kill();
        await p.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    [Fact]
    public void The_current_process_is_alive()
    {
        var self = ProcessProbe.Ref(Environment.ProcessId);

        Assert.NotNull(self);
        Assert.True(ProcessProbe.IsAlive(self));
        Assert.Equal(self.StartTime, ProcessProbe.StartTime(Environment.ProcessId));
    }

    [Fact]
    public void A_null_reference_is_not_alive()
    {
        Assert.False(ProcessProbe.IsAlive(null));
    }

    [Fact]
    public void A_reference_with_a_wrong_start_time_is_not_alive()
    {
        var self = ProcessProbe.Ref(Environment.ProcessId)!;

        Assert.False(ProcessProbe.IsAlive(self with { StartTime = self.StartTime + 1 }));
    }

    [Fact]
    public async Task A_reaped_child_is_not_alive()
    {
        // Arrange
        using var child = StartSleeper();
        var reference = ProcessProbe.Ref(child.Id);
        Assert.NotNull(reference);

        // Act
        await StopAsync(child);

        // Assert
        Assert.False(ProcessProbe.IsAlive(reference));
    }

    [Fact]
    public async Task A_command_name_with_spaces_and_parentheses_is_parsed()
    {
        // The kernel shows the executable's name, parentheses and all, in field 2 of /proc/PID/stat.
        using var tmp = new TempDir();
        var exe = tmp.Combine("a) b (c");
        File.Copy("/bin/sleep", exe);
        using var child = StartSleeper(exe);
        try
        {
            var reference = ProcessProbe.Ref(child.Id);

            Assert.NotNull(reference);
            Assert.True(ProcessProbe.IsAlive(reference));
            Assert.True(reference.StartTime >= ProcessProbe.StartTime(Environment.ProcessId));
        }
        finally
        {
            await StopAsync(child);
        }
    }

    [Fact]
    public async Task Kill_signals_the_live_process_it_refers_to()
    {
        using var child = StartSleeper();
        var reference = ProcessProbe.Ref(child.Id);

        ProcessProbe.Kill(reference);

        await child.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.False(ProcessProbe.IsAlive(reference));
    }

    [Fact]
    public async Task Kill_spares_a_process_whose_start_time_does_not_match()
    {
        using var child = StartSleeper();
        try
        {
            var stale = ProcessProbe.Ref(child.Id)! with { StartTime = 1 };

            ProcessProbe.Kill(stale);

            Assert.False(child.WaitForExit(200));
        }
        finally
        {
            await StopAsync(child);
        }
    }
}
