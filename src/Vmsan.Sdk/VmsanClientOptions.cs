using Vmsan.Core;
using Vmsan.Core.Processes;
using Vmsan.Vmm;
using Vmsan.Vmm.Qemu;

namespace Vmsan;

/// <summary>
/// How a <see cref="VmsanClient"/> is set up. The defaults read the environment here, once, at the edge:
/// <c>VMSAN_HOME</c> and <c>VMSAN_ASSETS</c> (<see cref="Home"/>, <see cref="Assets"/>) and <c>VMSAN_CLI</c>.
/// </summary>
public sealed class VmsanClientOptions
{
    /// <summary>Where VM state lives (<see cref="Home"/>) and the installed assets are (<see cref="Assets"/>).</summary>
    internal VmsanPaths Paths { get; init; } = VmsanPaths.FromEnvironment();

    /// <summary>The state directory: VMs, snapshots, the image cache (<c>VMSAN_HOME</c>, default ~/.vmsan).</summary>
    public string Home
    {
        get => Paths.Home;
        init => Paths = new VmsanPaths(value, Paths.Assets);
    }

    /// <summary>Where <c>install.sh</c> put the kernel, initramfs and runtime images (<c>VMSAN_ASSETS</c>, default /var/lib/vmsan).</summary>
    public string Assets
    {
        get => Paths.Assets;
        init => Paths = new VmsanPaths(Paths.Home, value);
    }

    /// <summary>
    /// A program that runs per-VM supervisors (<c>PROGRAM __supervise ID</c>), e.g. the installed <c>vmsan</c>.
    /// Defaults to <c>VMSAN_CLI</c>; when null, the current program is re-executed if it hosts supervisors
    /// (<see cref="VmsanSupervisorHost.RunIfRequestedAsync"/>).
    /// </summary>
    public string? SupervisorExecutable { get; init; } = Vmsan.Core.VmsanEnvironment.Current.Cli is { Length: > 0 } cli ? cli : null;

    /// <summary>The default VMM (<c>--vmm qemu</c>).</summary>
    internal IVmmBackend Backend
    {
        // Its --version output is cached under VMSAN_HOME (a QEMU spawn saved per boot and two per restore).
        get => _backend ??= new QemuMicrovmBackend(cacheDir: Path.Combine(Paths.Home, "cache"));
        init => _backend = value;
    }

    private IVmmBackend? _backend;

    /// <summary><c>--vmm firecracker</c>: Firecracker through its jailer, where both are installed (and KVM works).</summary>
    internal IVmmBackend Firecracker { get; init; } = new Vmm.Firecracker.FirecrackerBackend();

    /// <summary>The backend a VM was created with (its record's <c>Backend</c>); the default for older records.</summary>
    internal IVmmBackend BackendFor(string? name) => name == Firecracker.Name ? Firecracker : Backend;

    internal AccelDetector AccelDetector { get; init; } = new();

    /// <summary>TCG and VMM memory tuning (<c>VMSAN_TCG_TB_SIZE</c>, <c>VMSAN_TCG_CPU</c>, <c>VMSAN_VMM_MEMORY_OVERHEAD_MIB</c>), read here once.</summary>
    internal VmmSettings VmmSettings { get; init; } = VmmSettings.From(Vmsan.Core.VmsanEnvironment.Current);

    internal ICommandRunner Commands { get; init; } = CommandRunner.Instance;

    /// <summary>
    /// How long create/start wait for the agent to answer. TCG boots take seconds; 8 parallel ones longer.
    /// <c>VMSAN_BOOT_TIMEOUT</c> (seconds) overrides the default of 120 for a host that boots many VMs at once
    /// (the supervisor, which enforces it, inherits the variable from the CLI).
    /// </summary>
    public TimeSpan BootTimeout { get; init; } =
        int.TryParse(Vmsan.Core.VmsanEnvironment.Current.BootTimeout, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s)
            : TimeSpan.FromSeconds(120);

    /// <summary>How long a graceful stop waits for the guest to power off before QMP quit, then SIGKILL.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Debug lines (the CLI's --verbose sends them to stderr).</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Warnings about something allowed but risky (the CLI prints them on stderr, --json or not).</summary>
    public Action<string>? Warn { get; init; }
}
