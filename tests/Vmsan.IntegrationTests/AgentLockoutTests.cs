using System.Diagnostics;
using System.Globalization;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Issue 11: guest code cannot lock the host out of its own VM. An unprivileged guest process (two, each with its own
/// open-files limit) keeps ~2,400 slow connections to the agent's port on 127.0.0.1 and on the guest's own address,
/// reopening each one the agent closes; meanwhile the host's `vmsan exec` must still answer promptly. It used to hang
/// from ~1,100 such connections (the agent served every peer, had no connection cap, a per-read head timeout and 1,024
/// open files).
/// </summary>
public sealed class AgentLockoutTests(AgentLockoutTests.Vm vm) : IClassFixture<AgentLockoutTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; private set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Id = await World.CreateVm();
            var dir = Directory.CreateTempSubdirectory("vmsan-slowloris-").FullName;
            var bin = Path.Combine(dir, "slowloris");
            await Sh.Check($"gcc -static -O2 -o {bin} {Path.Combine(AppContext.BaseDirectory, "Infrastructure", "slowloris.c")}");
            var r = await World.Vmsan("upload", "-u", "root", Id, bin, "/tmp");
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    [Fact]
    public async Task Slow_connections_from_an_unprivileged_guest_process_do_not_lock_the_host_out()
    {
        const int Seconds = 45;
        var attack = W.VmsanWithTimeout(TimeSpan.FromSeconds(Seconds + 90), "exec", "-u", "user", vm.Id, "--", "sh", "-c",
            $"/tmp/slowloris {Seconds} 600 127.0.0.1 172.30.0.2 & /tmp/slowloris {Seconds} 600 127.0.0.1 172.30.0.2 & wait");
        await Task.Delay(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        var times = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            var r = await W.VmsanWithTimeout(TimeSpan.FromSeconds(60), "exec", vm.Id, "--", "true");
            times.Add(clock.Elapsed.TotalSeconds);
            Assert.True(r.ExitCode == 0, r.ToString());
            await Task.Delay(TimeSpan.FromSeconds(3), TestContext.Current.CancellationToken);
        }

        Assert.False(attack.IsCompleted, "the attack ended before the host's execs were measured");
        var limits = await W.Vmsan("exec", "-u", "root", vm.Id, "--", "sh", "-c", "grep 'Max open files' /proc/1/limits");
        var attacked = await attack;

        Assert.True(attacked.ExitCode == 0 && attacked.Stdout.Contains("opened", StringComparison.Ordinal), attacked.ToString());
        Assert.True(times.Max() < 15, $"host execs under attack took {string.Join(", ", times.Select(t => t.ToString("0.0", CultureInfo.InvariantCulture)))} s; attack: {attacked.Stdout}");
        var soft = long.Parse(limits.Stdout["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
        Assert.True(soft > 1024, limits.Stdout);
    }
}
