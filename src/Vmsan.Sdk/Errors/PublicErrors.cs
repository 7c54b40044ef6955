using CoreErrors = Vmsan.Core.Errors;

namespace Vmsan.Errors;

/// <summary>
/// The SDK's edge for failures: the implementation assemblies throw their own exception type, and every public
/// entry point turns it into <see cref="VmsanException"/> (same code by value, message and hint; the original
/// kept as the inner exception for its stack) so a library user catches one SDK-owned type.
/// </summary>
internal static class PublicErrors
{
    internal static VmsanException ToPublic(CoreErrors.VmsanException e) => new((ErrorCode)(int)e.Code, e.Message, e.Fix, e);

    internal static async Task<T> Run<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (CoreErrors.VmsanException e)
        {
            throw ToPublic(e);
        }
    }

    internal static async Task Run(Func<Task> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (CoreErrors.VmsanException e)
        {
            throw ToPublic(e);
        }
    }

    internal static async ValueTask Run(Func<ValueTask> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (CoreErrors.VmsanException e)
        {
            throw ToPublic(e);
        }
    }

    internal static T Run<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (CoreErrors.VmsanException e)
        {
            throw ToPublic(e);
        }
    }

    internal static void Run(Action call)
    {
        try
        {
            call();
        }
        catch (CoreErrors.VmsanException e)
        {
            throw ToPublic(e);
        }
    }
}
