using System.Diagnostics;
using System.Globalization;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Issue 11's guest clock: three VMs with 1, 2 and 4 vCPUs booted at once. Under TCG a guest with 2+ vCPUs used to
/// mark its TSCs unsynchronized and fall back to jiffies (4 ms resolution, a clock that fell 96 s behind in 15 min).
/// A static C probe (Infrastructure/clock-probe.c) checks the resolution, loads every vCPU while checking that
/// CLOCK_MONOTONIC never goes backwards across them, and prints CLOCK_REALTIME every 100 ms; the test timestamps each
/// line as it arrives. The load lasts <see cref="LoadSeconds"/> s (not the issue's two minutes: the whole suite's
/// budget), with the host sending no request meanwhile: only the supervisor's once-a-minute sync may touch the clock
/// during it, so what is measured is the drift users see between two syncs. Last, the supervisor's own sync: a guest
/// whose clock is set 5 s back in the middle of one long exec is back on the host's within a minute, with no command.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class ClockTests(ClockTests.Vms vms) : IClassFixture<ClockTests.Vms>
{
    private const int LoadSeconds = 40;
    private static readonly int[] CpuCounts = [1, 2, 4];

    public sealed class Vms : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public Dictionary<int, string> ByCpus { get; } = [];

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            var dir = Directory.CreateTempSubdirectory("vmsan-clock-probe-").FullName;
            var bin = Path.Combine(dir, "clock-probe");
            await Sh.Check($"gcc -static -O2 -pthread -o {bin} {Path.Combine(AppContext.BaseDirectory, "Infrastructure", "clock-probe.c")}");
            var ids = await Task.WhenAll(CpuCounts.Select(n => World.CreateVm("--cpus", n.ToString(CultureInfo.InvariantCulture))));
            for (var i = 0; i < CpuCounts.Length; i++)
            {
                ByCpus[CpuCounts[i]] = ids[i];
            }

            await Task.WhenAll(ids.Select(async id =>
            {
                var r = await World.Vmsan("upload", "-u", "root", id, bin, "/tmp");
                Assert.True(r.ExitCode == 0, r.ToString());
            }));
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vms.World;

    [Fact]
    public async Task Every_vcpu_count_runs_on_a_real_clocksource_with_nanosecond_resolution()
    {
        foreach (var (cpus, id) in vms.ByCpus)
        {
            var r = await W.Vmsan("exec", "-u", "root", id, "--", "sh", "-c",
                "cat /sys/devices/system/clocksource/clocksource0/current_clocksource; nproc; /tmp/clock-probe res");
            Assert.True(r.ExitCode == 0, r.ToString());
            var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(!lines[0].Contains("jiffies", StringComparison.Ordinal), $"{cpus} vCPUs: clocksource {lines[0]}");
            Assert.Equal(cpus.ToString(CultureInfo.InvariantCulture), lines[1]);
            var resolution = long.Parse(lines[2], CultureInfo.InvariantCulture);
            Assert.True(resolution <= 1000, $"{cpus} vCPUs: clock_getres(CLOCK_MONOTONIC) = {resolution} ns");
        }
    }

    [Fact]
    public async Task Under_load_on_every_vcpu_the_wall_clock_stays_within_100_ms_of_the_hosts_and_monotonic_never_goes_back()
    {
        var runs = await Task.WhenAll(vms.ByCpus.Select(async kv => (Cpus: kv.Key, Run: await LoadAsync(kv.Value))));

        var report = string.Join("; ", runs.Select(r => string.Create(CultureInfo.InvariantCulture,
            $"{r.Cpus} vCPUs: start {Window(r.Run, 0, 3):0.0} ms, end {End(r.Run):0.0} ms over {Last(r.Run):0.0} s, {r.Run.Summary}")));
        TestContext.Current.SendDiagnosticMessage(report);
        foreach (var (cpus, run) in runs)
        {
            Assert.True(run.Exit == 0, $"{cpus} vCPUs: probe exited {run.Exit}: {run.Summary} {run.Stderr}");
            var f = run.Summary.Split(' ');
            Assert.True(f.Length == 8 && f[0] == "checks", $"{cpus} vCPUs: {run.Summary}");
            Assert.Equal("0", f[3]);
            Assert.Equal(cpus.ToString(CultureInfo.InvariantCulture), f[7]);
            Assert.True(long.Parse(f[1], CultureInfo.InvariantCulture) > 1000, run.Summary);
            // Each sample is guest time minus arrival time on the host: the true offset less the one-way latency, so the
            // largest sample of a window is the closest to the true offset.
            var first = Window(run, 0, 3);
            var last = End(run);
            Assert.True(Last(run) > LoadSeconds / 2, $"{cpus} vCPUs: samples over only {Last(run):0.0} s. {report}");
            Assert.True(Math.Abs(first) < 100, $"{cpus} vCPUs: guest clock {first:0.0} ms off the host's at the start ({run.Samples.Count} samples). {report}");
            Assert.True(Math.Abs(last) < 100, $"{cpus} vCPUs: guest clock {last:0.0} ms off the host's after {LoadSeconds} s of load (start: {first:0.0} ms). {report}");
        }
    }

    [Fact]
    public async Task The_supervisor_brings_a_guest_clock_set_wrong_back_within_a_minute_with_no_command_sent()
    {
        // One exec: the client syncs the clock before it, then nothing but the supervisor talks to the agent.
        var run = await StreamAsync(vms.ByCpus[2], ["sh", "-c",
            "date -s @$(( $(date +%s) - 5 )) >/dev/null && i=0 && while [ $i -lt 150 ]; do echo T $(date +%s%N); sleep 0.5; i=$((i+1)); done"],
            TimeSpan.FromSeconds(200));
        Assert.True(run.Exit == 0, $"exit {run.Exit}: {run.Stderr}");
        var first = Window(run, 0, 3);
        var end = Last(run);
        var last = End(run);
        Assert.True(first is < -4000 and > -6000, $"the guest clock was not set 5 s back: {first:0.0} ms");
        Assert.True(Math.Abs(last) < 100, $"the guest clock is still {last:0.0} ms off {end:0} s later (started {first:0.0} ms off)");
        var synced = run.Samples.First(s => Math.Abs(s.OffsetMs) < 1000).AtSecond;
        Assert.True(synced < 62, $"synced only after {synced:0.0} s");
    }

    /// <summary>Seconds from the first sample to the last (the probe counts its 40 s on the guest's monotonic clock).</summary>
    private static double Last(LoadRun run) => run.Samples.Count > 0 ? run.Samples[^1].AtSecond : double.NaN;

    /// <summary>The offset over the run's last 3 s, wherever its end fell on the host's clock.</summary>
    private static double End(LoadRun run) => Window(run, Last(run) - 3, Last(run));

    /// <summary>The largest offset sample between two seconds of the run (the one with the least latency).</summary>
    private static double Window(LoadRun run, double from, double to) =>
        run.Samples.Where(s => s.AtSecond >= from && s.AtSecond <= to).Select(s => s.OffsetMs).DefaultIfEmpty(double.NaN).Max();

    private sealed record LoadRun(int Exit, string Summary, string Stderr, List<(double AtSecond, double OffsetMs)> Samples);

    private Task<LoadRun> LoadAsync(string id) =>
        StreamAsync(id, ["/tmp/clock-probe", "load", LoadSeconds.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(LoadSeconds + 120));

    /// <summary>One exec as root whose output lines <c>T NANOSECONDS</c> are guest wall-clock samples, each timestamped on arrival.</summary>
    private async Task<LoadRun> StreamAsync(string id, string[] command, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", W.HostNs, VmsanWorld.Cli, "exec", "-u", "root", id, "--", .. command])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["VMSAN_HOME"] = W.Home;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var samples = new List<(double, double)>();
        var summary = "";
        var clock = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(timeout);
        while (await p.StandardOutput.ReadLineAsync(cts.Token) is { } line)
        {
            var arrivedNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
            if (line.StartsWith("T ", StringComparison.Ordinal))
            {
                samples.Add((clock.Elapsed.TotalSeconds, (long.Parse(line[2..], CultureInfo.InvariantCulture) - arrivedNs) / 1e6));
            }
            else
            {
                summary = line;
            }
        }

        await p.WaitForExitAsync(cts.Token);
        // Seconds counted from the first sample, so boot-to-first-line time does not shift the windows.
        var t0 = samples.Count > 0 ? samples[0].Item1 : 0;
        return new LoadRun(p.ExitCode, summary, await stderr, samples.Select(s => (s.Item1 - t0, s.Item2)).ToList());
    }
}
