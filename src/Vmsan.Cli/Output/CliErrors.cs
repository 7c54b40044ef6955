using Vmsan.Core.Errors;

namespace Vmsan.Cli.Output;

/// <summary>The CLI prints one error type: the SDK's public exception maps back to it by value.</summary>
internal static class CliErrors
{
    public static VmsanException FromSdk(Vmsan.Errors.VmsanException ex) =>
        ex.InnerException as VmsanException ?? new VmsanException((ErrorCode)(int)ex.Code, ex.Message, ex.Fix, ex);
}
