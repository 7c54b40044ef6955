using CsCheck;
using Vmsan.Supervision;

namespace Vmsan.UnitTests.Sdk;

/// <summary>A step of the host's wall clock is told apart from time passing and from NTP's slewing.</summary>
public sealed class HostClockWatchTests
{
    private const long Ms = TimeSpan.TicksPerMillisecond;

    [Fact]
    public void Time_passing_and_slewing_are_not_steps_a_set_clock_is_with_its_size() =>
        Gen.Select(Gen.Long[1, 10_000].Array[1, 40], Gen.Int[-500, 500], Gen.Long[21, 100_000], Gen.Bool).Sample((advancesMs, slewPpm, stepMs, backwards) =>
        {
            long wall = 638_000_000_000_000_000, mono = 5_000 * Ms;
            var watch = new HostClockWatch(() => wall, () => mono);
            foreach (var a in advancesMs)
            {
                mono += a * Ms;
                wall += a * Ms + a * Ms * slewPpm / 1_000_000;   // both run, the wall clock slewed by up to 500 ppm
                Assert.Null(watch.Poll());
            }
            var step = (backwards ? -stepMs : stepMs) * Ms;
            wall += step;
            Assert.Equal(TimeSpan.FromTicks(step), watch.Poll());
            Assert.Null(watch.Poll());   // reported once
        });

    [Fact]
    public void The_hosts_own_clocks_do_not_step_while_nothing_sets_them()
    {
        var watch = HostClockWatch.ForHost();
        Thread.Sleep(50);
        Assert.Null(watch.Poll());
    }
}
