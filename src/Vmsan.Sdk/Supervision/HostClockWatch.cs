namespace Vmsan.Supervision;

/// <summary>
/// Tells when the host's wall clock was set (an NTP step, a resume from suspend, an operator's <c>date -s</c>):
/// the difference between the wall clock and the monotonic clock stays put while both run, and jumps when the wall
/// clock is set. A guest's clock runs on its own once set, so after such a step it is off by the step until
/// someone syncs it again (<see cref="VmSupervisor"/> does at once).
/// </summary>
internal sealed class HostClockWatch(Func<long> wallTicks, Func<long> monotonicTicks)
{
    /// <summary>A change of the wall-minus-monotonic difference above this is a step (NTP's slewing moves it by well under 1 ms/s).</summary>
    public static readonly TimeSpan StepThreshold = TimeSpan.FromMilliseconds(20);

    private long _difference = wallTicks() - monotonicTicks();

    /// <summary>The host's clocks (UTC wall time and <see cref="System.Diagnostics.Stopwatch"/>, both in 100 ns ticks).</summary>
    public static HostClockWatch ForHost() => new(() => DateTime.UtcNow.Ticks,
        () => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (10_000_000.0 / System.Diagnostics.Stopwatch.Frequency)));

    /// <summary>The size of the step since the last call, or null when the wall clock was not set meanwhile.</summary>
    public TimeSpan? Poll()
    {
        var now = wallTicks() - monotonicTicks();
        var step = now - _difference;
        _difference = now;
        return Math.Abs(step) > StepThreshold.Ticks ? TimeSpan.FromTicks(step) : null;
    }
}
