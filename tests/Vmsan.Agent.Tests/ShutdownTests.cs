namespace Vmsan.Agent.Tests;

public sealed class ShutdownTests
{
    [Fact(Timeout = 15_000)]
    public async Task Shutdown_in_host_mode_answers_202_and_the_agent_exits()
    {
        await using var agent = await AgentProcess.StartAsync();
        using var client = agent.CreateClient();

        await client.ShutdownAsync(TestContext.Current.CancellationToken);

        Assert.True(await agent.WaitForExitAsync(TimeSpan.FromSeconds(5)), "agent still running after shutdown");
    }

    [Fact(Timeout = 15_000)]
    public async Task Shutdown_kills_running_execs()
    {
        await using var agent = await AgentProcess.StartAsync();
        using var client = agent.CreateClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var stdout = new MemoryStream();
        var exec = client.ExecAsync(new(["sh", "-c", "echo $$; exec sleep 60"]), stdout, null, cts.Token);
        while (stdout.Length == 0)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        var pid = int.Parse(System.Text.Encoding.ASCII.GetString(stdout.ToArray()).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        using var other = agent.CreateClient();
        await other.ShutdownAsync(TestContext.Current.CancellationToken);

        Assert.True(await ExecTests.ProcessGoneAsync(pid, TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAnyAsync<Exception>(() => exec);
    }
}
