namespace Vmsan.Core;

/// <summary>
/// Every environment variable the host side of vmsan (CLI, SDK, supervisor, VMM, network and image code) reads, read
/// here and nowhere else (a unit test scans the sources for other reads). <see cref="Current"/> reads the process
/// environment on each use, so a variable set in-process (tests) takes effect; code that can take its settings as
/// arguments gets them from the edge (<c>VmsanClientOptions</c>, <see cref="VmsanPaths.FromEnvironment"/>).
/// </summary>
public sealed class VmsanEnvironment
{
    private readonly Func<string, string?> _get;

    /// <summary>An environment read through <paramref name="get"/> (a dictionary in tests).</summary>
    public VmsanEnvironment(Func<string, string?> get) => _get = get;

    /// <summary>This process's environment.</summary>
    public static VmsanEnvironment Current { get; } = new(Environment.GetEnvironmentVariable);

    private string? Value(string name) => _get(name) is { Length: > 0 } v ? v : null;

    /// <summary><c>VMSAN_HOME</c>: the state directory (VMs, snapshots, images).</summary>
    public string? Home => Value("VMSAN_HOME");

    /// <summary><c>HOME</c>: the user's home (default state directory ~/.vmsan, ~/.docker).</summary>
    public string? UserHome => Value("HOME");

    /// <summary><c>VMSAN_ASSETS</c>: the installed kernel, initramfs, runtimes (default /var/lib/vmsan).</summary>
    public string? Assets => Value("VMSAN_ASSETS");

    /// <summary><c>VMSAN_CLI</c>: a program that runs VM supervisors (the installed vmsan).</summary>
    public string? Cli => Value("VMSAN_CLI");

    /// <summary><c>VMSAN_BOOT_TIMEOUT</c>: seconds create/start wait for the agent.</summary>
    public string? BootTimeout => Value("VMSAN_BOOT_TIMEOUT");

    /// <summary><c>VMSAN_WARM</c>: 1 turns warm create (boot snapshots) on.</summary>
    public string? Warm => Value("VMSAN_WARM");

    /// <summary><c>VMSAN_SHM</c>: where guest RAM files live (default /dev/shm).</summary>
    public string? Shm => Value("VMSAN_SHM");

    /// <summary><c>VMSAN_CGROUP_PARENT</c>: the cgroup VMMs' cgroups are made under.</summary>
    public string? CgroupParent => Value("VMSAN_CGROUP_PARENT");

    /// <summary><c>VMSAN_VMM_MEMORY_OVERHEAD_MIB</c>: what a VMM may use beyond its guest's RAM.</summary>
    public string? VmmMemoryOverheadMib => Value("VMSAN_VMM_MEMORY_OVERHEAD_MIB");

    /// <summary><c>VMSAN_VMM_UID_BASE</c>: the first of the per-VM unprivileged uids.</summary>
    public string? VmmUidBase => Value("VMSAN_VMM_UID_BASE");

    /// <summary><c>VMSAN_TCG_TB_SIZE</c>: QEMU's TCG translation cache (MiB).</summary>
    public string? TcgTbSize => Value("VMSAN_TCG_TB_SIZE");

    /// <summary><c>VMSAN_TCG_CPU</c>: the CPU model QEMU emulates under TCG.</summary>
    public string? TcgCpu => Value("VMSAN_TCG_CPU");

    /// <summary><c>VMSAN_FAULT_SNAPSHOT_HOLD_MS</c>: a test fault, holding a snapshot open that long.</summary>
    public string? FaultSnapshotHoldMs => Value("VMSAN_FAULT_SNAPSHOT_HOLD_MS");

    /// <summary><c>DOCKER_CONFIG</c>: where registry credentials are (default ~/.docker).</summary>
    public string? DockerConfig => Value("DOCKER_CONFIG");

    /// <summary><c>PATH</c>: where tools (qemu, firecracker) are looked up.</summary>
    public string? SearchPath => Value("PATH");

    /// <summary><c>TERM</c>: the terminal type (handed to a guest tty, and whether output may be fancy).</summary>
    public string? Term => Value("TERM");

    /// <summary><c>NO_COLOR</c>: set (non-empty) turns colour off.</summary>
    public bool NoColor => Value("NO_COLOR") is not null;
}
