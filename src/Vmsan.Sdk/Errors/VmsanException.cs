namespace Vmsan.Errors;

/// <summary>
/// Every expected failure of a vmsan call: a stable <see cref="Code"/> (the CLI's, e.g. <c>VM_NOT_FOUND</c>), a
/// message for people and a hint on how to fix it. A call that throws it changed nothing it was asked to change
/// unless its documentation says otherwise.
/// </summary>
public sealed class VmsanException : Exception
{
    /// <summary>A failure with its code, message and fix hint.</summary>
    /// <param name="code">Why it failed.</param>
    /// <param name="message">What failed, for people.</param>
    /// <param name="fix">How to fix it (null: no hint).</param>
    /// <param name="inner">The failure underneath.</param>
    public VmsanException(ErrorCode code, string message, string? fix = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Fix = fix;
    }

    /// <summary>Why it failed.</summary>
    public ErrorCode Code { get; }

    /// <summary>The code as the CLI prints it (<c>VM_NOT_FOUND</c>).</summary>
    public string CodeName => Code.ToWire();

    /// <summary>How to fix it, when there is a hint.</summary>
    public string? Fix { get; }
}

/// <summary>The codes' printed names.</summary>
public static class ErrorCodeExtensions
{
    /// <summary>The name the CLI prints and <c>--json</c> carries, e.g. <c>VM_NOT_FOUND</c>.</summary>
    /// <param name="code">A code.</param>
    public static string ToWire(this ErrorCode code) => Core.Errors.ErrorCodeNames.ToWire((Core.Errors.ErrorCode)(int)code);
}
