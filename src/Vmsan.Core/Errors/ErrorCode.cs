// The one list of vmsan's error codes. It is compiled twice: into Vmsan.Core as Vmsan.Core.Errors.ErrorCode (what the
// implementation throws) and into Vmsan.Sdk as the public Vmsan.Errors.ErrorCode (what library users match on; the
// SDK's public surface names only its own types). One file, so the two cannot drift; a failure deep inside maps to
// the SDK's code by value.
#if VMSAN_SDK
namespace Vmsan.Errors;
#else
namespace Vmsan.Core.Errors;
#endif

/// <summary>
/// Why a vmsan call failed: stable reason codes the CLI prints (as wire names such as <c>VM_NOT_FOUND</c>) and maps to
/// exit codes. Programs and scripts match on these, never on messages. A new code goes at the end (values are stable).
/// </summary>
public enum ErrorCode
{
    /// <summary>A bug in vmsan (please report it with the message).</summary>
    Internal,
    /// <summary>A value the caller passed is not valid; nothing was changed.</summary>
    InvalidArgument,
    /// <summary>No VM with that id.</summary>
    VmNotFound,
    /// <summary>The VM is not running (stopped, or its VMM died).</summary>
    VmNotRunning,
    /// <summary>The VM runs already.</summary>
    VmAlreadyRunning,
    /// <summary>Another operation holds the VM.</summary>
    VmBusy,
    /// <summary>The VM did not boot (its agent never answered).</summary>
    VmBootFailed,
    /// <summary>The VMM (QEMU, Firecracker) failed or refused a command.</summary>
    VmmFailed,
    /// <summary>KVM was asked for and is not usable here.</summary>
    KvmUnavailable,
    /// <summary>No QEMU binary was found.</summary>
    QemuNotFound,
    /// <summary>The kernel, initramfs or a runtime image is not installed.</summary>
    AssetsMissing,
    /// <summary>No such runtime (or it is not built).</summary>
    RuntimeNotFound,
    /// <summary>The VM's namespace, devices or nftables rules could not be set up.</summary>
    NetworkSetupFailed,
    /// <summary>The guest agent does not answer.</summary>
    AgentUnreachable,
    /// <summary>The guest agent refused or failed the request.</summary>
    AgentError,
    /// <summary>The command could not be started in the guest.</summary>
    ExecFailed,
    /// <summary>A state file is damaged.</summary>
    StateCorrupt,
    /// <summary>vmsan needs root (or a permission it lacks).</summary>
    PermissionDenied,
    /// <summary>Every network slot is in use.</summary>
    NoFreeSlot,
    /// <summary>The operation did not finish in time.</summary>
    Timeout,
    /// <summary>A program or setting vmsan needs is missing.</summary>
    DependencyMissing,
    /// <summary>A file transfer was refused or broke.</summary>
    TransferFailed,
    /// <summary>A local or guest path does not exist.</summary>
    PathNotFound,
    /// <summary>No such OCI image (in the registry or the cache).</summary>
    ImageNotFound,
    /// <summary>The registry does not answer.</summary>
    RegistryUnreachable,
    /// <summary>The registry refused the credentials.</summary>
    RegistryAuthFailed,
    /// <summary>The image has no manifest for the platform asked for.</summary>
    PlatformNotFound,
    /// <summary>A blob's content does not match its digest.</summary>
    DigestMismatch,
    /// <summary>The image is malformed or unsupported.</summary>
    BadImage,
    /// <summary>The VM is paused.</summary>
    VmPaused,
    /// <summary>No such snapshot.</summary>
    SnapshotNotFound,
    /// <summary>VMs depend on the snapshot.</summary>
    SnapshotInUse,
    /// <summary>The snapshot was made by another VMM build or backend.</summary>
    SnapshotIncompatible,
    /// <summary>No such user in the guest.</summary>
    UserNotFound,
    /// <summary>A published host port is held by another VM or process.</summary>
    PortInUse,
    /// <summary>A runtime build failed (its log says why); the previous image stays in use.</summary>
    RuntimeBuildFailed,
    /// <summary>Another build of the same runtime is running.</summary>
    RuntimeBuildBusy,
    /// <summary>A build would turn an unversioned runtime image that VMs or snapshots use by name into the pointer to a new version.</summary>
    RuntimeInUse,
    /// <summary>The command was stopped by a signal (SIGINT, SIGTERM) before it finished (it stopped what it had started; a VM being created stays).</summary>
    Interrupted,
}
