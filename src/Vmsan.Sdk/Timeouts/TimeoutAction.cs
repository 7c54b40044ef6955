using Vmsan.Core.Errors;

namespace Vmsan;

/// <summary>What a VM's timeout does when it fires, and the limits of a timeout.</summary>
internal static class TimeoutAction
{
    public const string Stop = "stop";
    public const string Pause = "pause";
    public const string Remove = "remove";

    public static readonly string[] All = [Stop, Pause, Remove];

    /// <summary>At least a second; at most a year (beyond that a timeout is a typo, not a plan).</summary>
    public static readonly TimeSpan Min = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Max = TimeSpan.FromDays(366);

    /// <summary>INVALID_ARGUMENT for an action that is not one of <see cref="All"/>, a timeout out of range, or an action without a timeout.</summary>
    public static void Validate(TimeSpan? timeout, string action, bool explicitAction)
    {
        if (!All.Contains(action, StringComparer.Ordinal))
            throw VmsanException.Invalid($"--on-timeout '{action}' is not an action.", "Use --on-timeout stop, pause or remove.");
        if (timeout is { } t && (t < Min || t > Max))
            throw VmsanException.Invalid($"--timeout {t} is out of range.", "Give a timeout between 1s and 366d, e.g. --timeout 10m.");
        if (timeout is null && explicitAction)
            throw VmsanException.Invalid("--on-timeout needs --timeout.", "Add --timeout, e.g. --timeout 10m --on-timeout pause.");
    }
}
