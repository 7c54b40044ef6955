using Vmsan.Cli;
using Vmsan.Core.Errors;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.Cli;

public class DurationsTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("5", 5_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData(" 2S ", 2_000)]
    [InlineData("0.0001s", 1)]
    public void ParseMs_reads_units_into_milliseconds(string text, int expected)
    {
        Assert.Equal(expected, Durations.ParseMs(text, "--timeout"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("0s")]
    [InlineData("-1s")]
    [InlineData("10d")]
    [InlineData("s")]
    [InlineData("ms")]
    [InlineData("1e10s")]
    [InlineData("900h")]
    [InlineData("nan")]
    [InlineData("NaNs")]
    [InlineData("infinity")]
    public void ParseMs_rejects_what_is_not_a_positive_duration(string text)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => Durations.ParseMs(text, "--timeout"));

        Assert.Contains("--timeout", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("10m", 600)]
    [InlineData("2h", 7200)]
    [InlineData("1d", 86400)]
    [InlineData("1.5h", 5400)]
    [InlineData("5", 5)]
    [InlineData(" 3M ", 180)]
    public void ParseSpan_reads_lifetimes_up_to_days(string text, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Durations.ParseSpan(text, "--timeout"));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("-5m")]
    [InlineData("500ms")]
    [InlineData("1w")]
    [InlineData("nan")]
    [InlineData("1e300d")]
    [InlineData("infinityd")]
    public void ParseSpan_rejects_what_is_not_a_positive_lifetime(string text) =>
        ErrorAssert.Throws(ErrorCode.InvalidArgument, () => Durations.ParseSpan(text, "--timeout"));

    [Theory]
    [InlineData(null, "stop", false, true)]
    [InlineData(600.0, "pause", true, true)]
    [InlineData(600.0, "remove", true, true)]
    [InlineData(600.0, "destroy", true, false)]
    [InlineData(null, "pause", true, false)]
    [InlineData(0.5, "stop", false, false)]
    [InlineData(400 * 86400.0, "stop", false, false)]
    public void A_timeout_needs_a_known_action_a_sane_length_and_an_action_needs_a_timeout(double? seconds, string action, bool explicitAction, bool ok)
    {
        var t = seconds is { } s ? TimeSpan.FromSeconds(s) : (TimeSpan?)null;
        if (ok)
            Vmsan.TimeoutAction.Validate(t, action, explicitAction);
        else
            ErrorAssert.Throws(ErrorCode.InvalidArgument, () => Vmsan.TimeoutAction.Validate(t, action, explicitAction));
    }
}
