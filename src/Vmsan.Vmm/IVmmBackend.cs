namespace Vmsan.Vmm;

/// <summary>What a backend needs to boot one VM. Paths are absolute; the backend owns none of them.</summary>
public sealed record VmLaunchSpec
{
    /// <summary>TCG and memory tuning (read from the environment at the edge).</summary>
    public VmmSettings Settings { get; init; } = new();
    public required string VmId { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required string Kernel { get; init; }
    public required string Initrd { get; init; }
    public required string KernelArgs { get; init; }
    /// <summary>The per-VM writable disk (a qcow2 overlay over the read-only base for QEMU).</summary>
    public required string Disk { get; init; }
    public string DiskFormat { get; init; } = "qcow2";
    /// <summary>TAP device the guest NIC attaches to, inside <see cref="Netns"/>; null for no NIC.</summary>
    public string? Tap { get; init; }
    public string Mac { get; init; } = "06:00:ac:1e:00:02";
    /// <summary>Network namespace the VMM process runs in (where the TAP lives); null = the caller's.</summary>
    public string? Netns { get; init; }
    public required string ConsoleLog { get; init; }
    /// <summary>Control socket (QMP for QEMU, the API socket for Firecracker).</summary>
    public required string ControlSocket { get; init; }
    public required AccelChoice Accel { get; init; }
    /// <summary>
    /// An open descriptor on <see cref="Tap"/> that the VMM inherits (attached by the caller inside
    /// the namespace), so the VMM needs neither CAP_NET_ADMIN nor /dev/net/tun. Null: the VMM opens the TAP itself.
    /// </summary>
    public int? TapFd { get; init; }
    public VmmConfinementSpec Confinement { get; init; } = VmmConfinementSpec.None;

    /// <summary>
    /// Guest RAM backed by this file (memory-backend-file). Shared (MAP_SHARED, on tmpfs) for a VM that may be
    /// snapshotted: the file then is the guest's memory and a snapshot saves only device state. Private
    /// (MAP_PRIVATE) for a snapshot clone: pages are read from the snapshot on first touch, copy-on-write.
    /// Opened at start-up, before the VMM chroots and drops privileges.
    /// </summary>
    public string? MemoryFile { get; init; }

    public bool MemoryShared { get; init; } = true;

    /// <summary>Start with vCPUs stopped, waiting for a device state (<c>-S -incoming defer</c>).</summary>
    public bool Incoming { get; init; }

    /// <summary>
    /// With <see cref="Incoming"/>, for a VMM that loads a snapshot from files at launch (Firecracker's
    /// <c>PUT /snapshot/load</c>): the device state to load, with <see cref="MemoryFile"/> as its memory. QEMU takes its
    /// state as a migration stream instead (<see cref="IVmmControl.LoadStateAsync"/>) and ignores this.
    /// </summary>
    public string? StateFile { get; init; }

    /// <summary>
    /// The device set to build (<see cref="VmDevices"/>). A device state only loads into the layout that saved it, so
    /// a VM restored from a snapshot or from <c>pause --persist</c> is launched with the set it was saved with.
    /// </summary>
    public string Devices { get; init; } = VmDevices.Current;
}

/// <summary>
/// Names of the guest device sets vmsan has built, recorded in each VM's state and each snapshot's manifest. Migration
/// of a device state needs the same devices on both sides: a snapshot made with another set cannot be cloned.
/// </summary>
public static class VmDevices
{
    /// <summary>Disk and NIC only: what VMs had before the virtio-rng device (a record without a device set).</summary>
    public const string Legacy = "blk,net";

    /// <summary>Disk, NIC and a virtio-rng device fed by the VMM's own getrandom() (<c>rng-builtin</c>).</summary>
    public const string Current = "blk,net,rng";

    /// <summary>The set a record names (null: <see cref="Legacy"/>).</summary>
    public static string Of(string? recorded) => recorded ?? Legacy;

    /// <summary>Whether the set has the virtio-rng device.</summary>
    public static bool HasRng(string devices) => devices.Split(',').Contains("rng");

    /// <summary>Whether this vmsan can build the set (the ones above).</summary>
    public static bool IsKnown(string devices) => devices is Legacy or Current;
}

/// <summary>
/// How to confine the VMM process. Null <see cref="Uid"/>: run as root with every capability;
/// else the VMM ends as that uid/gid with empty effective, permitted and bounding sets.
/// </summary>
public sealed record VmmConfinementSpec
{
    public static readonly VmmConfinementSpec None = new();

    public int? Uid { get; init; }
    public int? Gid { get; init; }
    public bool Seccomp { get; init; }
    /// <summary>Directory the VMM chroots into once its files are open; null = no chroot.</summary>
    public string? Jail { get; init; }
    /// <summary><c>cgroup.procs</c> files the launcher writes its pid to before it execs the VMM.</summary>
    public IReadOnlyList<string> CgroupProcs { get; init; } = [];

    /// <summary>
    /// The VM's cgroup limits, its hierarchy version and its parent relative to the controller root,
    /// for a VMM launcher that writes the limits itself (Firecracker's jailer); null = no cgroup.
    /// </summary>
    public Cgroups.CgroupLimits? Limits { get; init; }

    public int? CgroupVersion { get; init; }

    public string? CgroupParent { get; init; }
}

/// <summary>
/// A VMM (QEMU microvm here, Firecracker where installed). Launch returns once the VMM process
/// runs and has created its control socket (the socket file exists; QEMU binds and listens on it in
/// one step, so it accepts connections from then on, though nothing has been sent over it yet);
/// everything after that goes through <see cref="IVmmControl"/>, which any process (CLI or
/// supervisor) can open from the socket path alone, and whose connect reads the QMP greeting.
/// </summary>
public interface IVmmBackend
{
    string Name { get; }

    /// <summary>Checks the binary exists; returns null when usable, else the reason.</summary>
    string? CheckAvailable();

    Task<VmmProcess> LaunchAsync(VmLaunchSpec spec, CancellationToken ct);

    Task<IVmmControl> ConnectAsync(string controlSocket, CancellationToken ct);
}

/// <summary>A launched VMM: its pid and a task that completes with its exit code.</summary>
public sealed class VmmProcess(int pid, Task<int> exited)
{
    public int Pid { get; } = pid;

    public Task<int> Exited { get; } = exited;
}

/// <summary>Runtime control of a VMM. Shaped for snapshots: pause/resume come first.</summary>
public interface IVmmControl : IAsyncDisposable
{
    /// <summary>Ask the guest to power off (ACPI power button); the guest may ignore it.</summary>
    Task PowerdownAsync(CancellationToken ct);

    /// <summary>Stop the VMM at once (guest state lost, disk writes already flushed by QEMU kept).</summary>
    Task QuitAsync(CancellationToken ct);

    Task PauseAsync(CancellationToken ct);

    Task ResumeAsync(CancellationToken ct);

    /// <summary>"running", "paused", "shutdown"... as the VMM reports it.</summary>
    Task<string> QueryStatusAsync(CancellationToken ct);

    /// <summary>
    /// Writes the device state (not shared RAM) to a migration URI the caller listens on (a TCP port on the
    /// loopback of the VM's namespace: a confined VMM may neither spawn nor open host paths); returns when done.
    /// </summary>
    Task SaveStateAsync(string uri, CancellationToken ct);

    /// <summary>
    /// Into a VMM started with <see cref="VmLaunchSpec.Incoming"/>: listens on <paramref name="uri"/>, runs
    /// <paramref name="feed"/> (which sends the state there), and returns once loaded; vCPUs stay stopped.
    /// </summary>
    Task LoadStateAsync(string uri, Func<CancellationToken, Task> feed, CancellationToken ct);

    /// <summary>
    /// Freezes the running disk: its top layer becomes read-only and the VM continues on <paramref name="newTop"/>,
    /// an existing, empty qcow2 whose backing is that layer (QMP <c>blockdev-snapshot-sync</c>, mode existing).
    /// Nothing is copied. The path must be openable by the VMM (inside its jail when chrooted).
    /// </summary>
    Task FreezeDiskAsync(string newTop, CancellationToken ct);

    /// <summary>The VMM build ("7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)"): a snapshot only loads into the same one.</summary>
    Task<string> VersionAsync(CancellationToken ct);
}
