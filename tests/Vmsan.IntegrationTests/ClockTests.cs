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
/// budget), with the host sending no request meanwhile, so nothing re-syncs the clock during it.
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
            $"{r.Cpus} vCPUs: start {Window(r.Run, 0, 3):0.0} ms, end {Window(r.Run, LoadSeconds - 3, LoadSeconds + 60):0.0} ms, {r.Run.Summary}")));
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
            var last = Window(run, LoadSeconds - 3, LoadSeconds + 60);
            Assert.True(Math.Abs(first) < 100, $"{cpus} vCPUs: guest clock {first:0.0} ms off the host's at the start ({run.Samples.Count} samples). {report}");
            Assert.True(Math.Abs(last) < 100, $"{cpus} vCPUs: guest clock {last:0.0} ms off the host's after {LoadSeconds} s of load (start: {first:0.0} ms). {report}");
        }
    }

    /// <summary>The largest offset sample between two seconds of the run (the one with the least latency).</summary>
    private static double Window(LoadRun run, double from, double to) =>
        run.Samples.Where(s => s.AtSecond >= from && s.AtSecond <= to).Select(s => s.OffsetMs).DefaultIfEmpty(double.NaN).Max();

    private sealed record LoadRun(int Exit, string Summary, string Stderr, List<(double AtSecond, double OffsetMs)> Samples);

    private async Task<LoadRun> LoadAsync(string id)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", W.HostNs, VmsanWorld.Cli, "exec", "-u", "root", id, "--", "/tmp/clock-probe", "load",
                     LoadSeconds.ToString(CultureInfo.InvariantCulture)])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["VMSAN_HOME"] = W.Home;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var samples = new List<(double, double)>();
        var summary = "";
        var clock = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(LoadSeconds + 120));
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
