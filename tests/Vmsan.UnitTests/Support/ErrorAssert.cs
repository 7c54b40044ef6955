using Vmsan.Core.Errors;

namespace Vmsan.UnitTests.Support;

public static class ErrorAssert
{
    /// <summary>Asserts <paramref name="action"/> throws a VmsanException with <paramref name="code"/> and a fix hint.</summary>
    public static VmsanException Throws(ErrorCode code, Action action)
    {
        var ex = Assert.Throws<VmsanException>(action);
        Assert.Equal(code, ex.Code);
        Assert.False(string.IsNullOrWhiteSpace(ex.Fix), $"no fix hint for: {ex.Message}");
        return ex;
    }

    public static async Task<VmsanException> ThrowsAsync(ErrorCode code, Func<Task> action, bool requireFix = true)
    {
        var ex = await Assert.ThrowsAsync<VmsanException>(action);
        Assert.Equal(code, ex.Code);
        if (requireFix)
            Assert.False(string.IsNullOrWhiteSpace(ex.Fix), $"no fix hint for: {ex.Message}");
        return ex;
    }
}
