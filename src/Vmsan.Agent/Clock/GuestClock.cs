using System.Globalization;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Clock;

/// <summary>
/// Keeps the guest's wall clock in step with the host's. Every authenticated request from the host carries the host's
/// time (<see cref="AgentProtocol.HostTimeHeader"/>, Unix nanoseconds taken just before sending); when the guest's
/// CLOCK_REALTIME differs by more than <see cref="StepThresholdNs"/> the agent steps it to the host's value. The VM
/// boots from the RTC (whole seconds) and, with <c>tsc=reliable</c>, the kernel's clocksource watchdog is off, so
/// nothing else corrects it. The error left is the request's one-way latency (a few ms). Only as PID 1: an agent in
/// host mode (tests) never touches the host's clock. CLOCK_MONOTONIC is not affected by a step.
/// </summary>
internal static class GuestClock
{
    public const long StepThresholdNs = 20_000_000;

    private static long _lastStepTicks;

    /// <summary>Set at start when the agent owns the machine's clock (PID 1).</summary>
    public static bool Enabled { get; set; }

    public static void Observe(string? header)
    {
        if (!Enabled || header is null || !long.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out var hostNs))
        {
            return;
        }

        var guestNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        var offset = guestNs - hostNs;
        if (Math.Abs(offset) <= StepThresholdNs)
        {
            return;
        }

        // Concurrent requests carry nearly the same time: one step is enough.
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastStepTicks);
        if (last != 0 && now - last < 100 && Interlocked.CompareExchange(ref _lastStepTicks, now, last) != last)
        {
            return;
        }

        Interlocked.Exchange(ref _lastStepTicks, now);
        var time = new Interop.TimeSpec { Seconds = hostNs / 1_000_000_000, Nanoseconds = hostNs % 1_000_000_000 };
        if (Interop.ClockSetTime(Interop.CLOCK_REALTIME, time) != 0)
        {
            AgentLog.Info($"clock: could not step the wall clock: {Interop.StrError(Interop.LastErrno)}");
            return;
        }

        AgentLog.Info(string.Create(CultureInfo.InvariantCulture, $"clock: stepped the wall clock by {-offset / 1_000_000.0:0.0} ms to the host's"));
    }
}
