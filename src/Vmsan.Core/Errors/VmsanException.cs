namespace Vmsan.Core.Errors;

/// <summary>
/// An expected failure with a stable <see cref="ErrorCode"/>, a message for people and a hint on
/// how to fix it. The CLI maps it to an exit code and to <c>{"error":{code,message,fix}}</c>.
/// </summary>
public class VmsanException : Exception
{
    public VmsanException(ErrorCode code, string message, string? fix = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Fix = fix;
    }

    public ErrorCode Code { get; }

    public string? Fix { get; }

    public static VmsanException NotFound(string id) =>
        new(ErrorCode.VmNotFound, $"No VM with id '{id}'.", "Run `vmsan list` to see the VMs that exist.");

    public static VmsanException Invalid(string message, string? fix = null) =>
        new(ErrorCode.InvalidArgument, message, fix ?? "Run the command with --help to see valid values.");
}
