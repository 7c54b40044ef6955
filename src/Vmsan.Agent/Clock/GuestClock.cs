using System.Globalization;
using System.Text.Json;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Clock;

/// <summary>
/// <c>POST /clock</c>: moves the guest's wall clock by a relative amount the host measured (docs/agent-api.md, "Guest
/// clock"). Relative, so the request's own latency does not matter. The VM boots from the RTC (whole seconds) and, with
/// <c>tsc=reliable</c>, the kernel's clocksource watchdog is off, so nothing else corrects it. Only as PID 1: an agent in
/// host mode (tests) answers <c>applied: false</c> and never touches the host's clock. CLOCK_MONOTONIC is not affected.
/// </summary>
internal static class GuestClock
{
    /// <summary>Largest step accepted (a day): anything larger is a bug, not drift.</summary>
    private const long MaxAdjustNs = 86_400L * 1_000_000_000;

    /// <summary>Set at start when the agent owns the machine's clock (PID 1).</summary>
    public static bool Enabled { get; set; }

    public static async ValueTask HandleAsync(RequestContext context)
    {
        var body = await context.ReadBodyAsync(4096, context.ServerToken).ConfigureAwait(false);
        ClockAdjustRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, AgentJsonContext.Default.ClockAdjustRequest);
        }
        catch (JsonException e)
        {
            throw new HttpBadRequestException($"invalid clock request: {e.Message}", closeConnection: false);
        }

        if (request is null || Math.Abs(request.AdjustNs) > MaxAdjustNs)
        {
            throw new HttpBadRequestException("need {\"adjustNs\":N} with |N| <= one day", closeConnection: false);
        }

        await context.WriteJsonAsync(200, new ClockAdjustResponse(Enabled && Adjust(request.AdjustNs)), AgentJsonContext.Default.ClockAdjustResponse,
            context.ServerToken).ConfigureAwait(false);
    }

    private static bool Adjust(long adjustNs)
    {
        var target = ((DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100) + adjustNs;
        var time = new Libc.TimeSpec { Seconds = target / 1_000_000_000, Nanoseconds = target % 1_000_000_000 };
        if (Libc.ClockSetTime(Libc.CLOCK_REALTIME, time) != 0)
        {
            AgentLog.Info($"clock: could not step the wall clock: {Libc.StrError(Libc.LastErrno)}");
            return false;
        }

        AgentLog.Info(string.Create(CultureInfo.InvariantCulture, $"clock: stepped the wall clock by {adjustNs / 1_000_000.0:0.0} ms to the host's"));
        return true;
    }
}
