using Vmsan.Core.Errors;

namespace Vmsan.UnitTests.Support;

public static class ErrorAssert
{
    /// <summary>Asserts <paramref name="action"/> throws a VmsanException with <paramref name="code"/> and a fix hint.</summary>
    /// <remarks>The SDK's public calls throw its own <see cref="Vmsan.Errors.VmsanException"/>: it counts, by its code's value.</remarks>
    public static VmsanException Throws(ErrorCode code, Action action)
    {
        var ex = Typed(Assert.ThrowsAny<Exception>(action));
        Assert.Equal(code, ex.Code);
        Assert.False(string.IsNullOrWhiteSpace(ex.Fix), $"no fix hint for: {ex.Message}");
        return ex;
    }

    public static async Task<VmsanException> ThrowsAsync(ErrorCode code, Func<Task> action, bool requireFix = true)
    {
        var ex = Typed(await Assert.ThrowsAnyAsync<Exception>(action));
        Assert.Equal(code, ex.Code);
        if (requireFix)
            Assert.False(string.IsNullOrWhiteSpace(ex.Fix), $"no fix hint for: {ex.Message}");
        return ex;
    }

    private static VmsanException Typed(Exception e) => e switch
    {
        VmsanException v => v,
        Vmsan.Errors.VmsanException s => new VmsanException((ErrorCode)(int)s.Code, s.Message, s.Fix, s),
        _ => throw new Xunit.Sdk.XunitException($"expected a VmsanException, got {e}"),
    };
}
