using Vmsan.Core;
using Vmsan.Core.Processes;
using Vmsan.Vmm;
using Vmsan.Vmm.Qemu;

namespace Vmsan;

public sealed class VmsanClientOptions
{
    public VmsanPaths Paths { get; init; } = VmsanPaths.FromEnvironment();

    /// <summary>
    /// The <c>vmsan</c> executable that runs per-VM supervisors (<c>vmsan __supervise ID</c>).
    /// Defaults to <c>VMSAN_CLI</c>, then <c>vmsan</c> on PATH.
    /// </summary>
    public string? SupervisorExecutable { get; init; }

    /// <summary>The default VMM (<c>--vmm qemu</c>).</summary>
    public IVmmBackend Backend { get; init; } = new QemuMicrovmBackend();

    /// <summary><c>--vmm firecracker</c>: Firecracker through its jailer, where both are installed (and KVM works).</summary>
    public IVmmBackend Firecracker { get; init; } = new Vmm.Firecracker.FirecrackerBackend();

    /// <summary>The backend a VM was created with (its record's <c>Backend</c>); the default for older records.</summary>
    internal IVmmBackend BackendFor(string? name) => name == Firecracker.Name ? Firecracker : Backend;

    public AccelDetector AccelDetector { get; init; } = new();

    public ICommandRunner Commands { get; init; } = CommandRunner.Instance;

    /// <summary>How long create/start wait for the agent to answer. TCG boots take seconds; 8 parallel ones longer.</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How long a graceful stop waits for the guest to power off before QMP quit, then SIGKILL.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Debug lines (the CLI's --verbose sends them to stderr).</summary>
    public Action<string>? Log { get; init; }
}
