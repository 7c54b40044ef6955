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
}
