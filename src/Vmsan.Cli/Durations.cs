using System.Globalization;
using Vmsan.Core.Errors;

namespace Vmsan.Cli;

public static class Durations
{
    /// <summary>Parses 500ms, 30s, 2m, 1h, or plain seconds, into milliseconds.</summary>
    public static int ParseMs(string text, string flag)
    {
        var t = text.Trim().ToLowerInvariant();
        double mult = 1000;
        if (t.EndsWith("ms", StringComparison.Ordinal))
        {
            mult = 1;
            t = t[..^2];
        }
        else if (t.Length > 0 && t[^1] is 's' or 'm' or 'h')
        {
            mult = t[^1] switch { 's' => 1000, 'm' => 60_000, _ => 3_600_000 };
            t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) /* NaN too */ || v * mult > int.MaxValue)
            throw VmsanException.Invalid($"{flag}: '{text}' is not a duration.", $"Write {flag} like 30s, 2m or 500ms.");
        return (int)Math.Ceiling(v * mult);
    }

    /// <summary>A lifetime: 30s, 10m, 2h, 1d, 1.5h, or plain seconds (INVALID_ARGUMENT otherwise).</summary>
    public static TimeSpan ParseSpan(string text, string flag)
    {
        var t = text.Trim().ToLowerInvariant();
        var unit = t.Length > 0 && t[^1] is 's' or 'm' or 'h' or 'd' ? t[^1] : 's';
        var number = t.Length > 0 && t[^1] is 's' or 'm' or 'h' or 'd' ? t[..^1] : t;
        var seconds = unit switch { 's' => 1.0, 'm' => 60.0, 'h' => 3600.0, _ => 86400.0 };
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) || !(v * seconds < 1e10))
            throw VmsanException.Invalid($"{flag}: '{text}' is not a duration.", $"Write {flag} like 30s, 10m, 2h or 1d.");
        return TimeSpan.FromSeconds(v * seconds);
    }
}
