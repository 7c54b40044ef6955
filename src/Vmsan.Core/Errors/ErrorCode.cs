namespace Vmsan.Core.Errors;

/// <summary>Stable reason codes for every failure vmsan reports; scripts match on these.</summary>
/// <remarks>
/// The SDK's public <c>Vmsan.Errors.ErrorCode</c> has the same names and values (library users see that one): a new
/// code goes into both, in the same place; PublicSurfaceTests fails when they differ.
/// </remarks>
public enum ErrorCode
{
    Internal,
    InvalidArgument,
    VmNotFound,
    VmNotRunning,
    VmAlreadyRunning,
    VmBusy,
    VmBootFailed,
    VmmFailed,
    KvmUnavailable,
    QemuNotFound,
    AssetsMissing,
    RuntimeNotFound,
    NetworkSetupFailed,
    AgentUnreachable,
    AgentError,
    ExecFailed,
    StateCorrupt,
    PermissionDenied,
    NoFreeSlot,
    Timeout,
    DependencyMissing,
    TransferFailed,
    PathNotFound,
    ImageNotFound,
    RegistryUnreachable,
    RegistryAuthFailed,
    PlatformNotFound,
    DigestMismatch,
    BadImage,
    VmPaused,
    SnapshotNotFound,
    SnapshotInUse,
    SnapshotIncompatible,
    UserNotFound,
    PortInUse,
    RuntimeBuildFailed,
    RuntimeBuildBusy,
    RuntimeInUse,
    Interrupted,
}

public static class ErrorCodeNames
{
    /// <summary>The wire name, e.g. <c>VM_NOT_FOUND</c>.</summary>
    public static string ToWire(this ErrorCode code)
    {
        var name = code.ToString();
        var sb = new System.Text.StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (i > 0 && char.IsUpper(c))
                sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }
}
