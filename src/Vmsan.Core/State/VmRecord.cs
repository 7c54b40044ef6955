using System.Text.Json.Serialization;

namespace Vmsan.Core.State;

/// <summary>Lifecycle states. Only <see cref="Running"/> is ever trusted without checking the VMM process.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VmStatus>))]
public enum VmStatus
{
    [JsonStringEnumMemberName("creating")] Creating,
    [JsonStringEnumMemberName("starting")] Starting,
    [JsonStringEnumMemberName("running")] Running,
    /// <summary>vCPUs stopped (QMP <c>stop</c>), memory kept in the live VMM; the VMM process is alive.</summary>
    [JsonStringEnumMemberName("paused")] Paused,
    [JsonStringEnumMemberName("stopping")] Stopping,
    [JsonStringEnumMemberName("stopped")] Stopped,
    [JsonStringEnumMemberName("error")] Error,
}

/// <summary>A process we own, identified by pid and kernel start time so a recycled pid never fools us.</summary>
public sealed record ProcessRef(int Pid, long StartTime);

public sealed record VmNetwork
{
    public required int Slot { get; init; }
    public required string Netns { get; init; }
    public required string HostVeth { get; init; }
    public required string HostIp { get; init; }
    public required string NsIp { get; init; }
    public required string GuestIp { get; init; }
    public required string GatewayIp { get; init; }
    public string? Dns { get; init; }

    /// <summary>The egress policy's mode: <c>allow-all</c>, <c>deny-all</c> or <c>custom</c> (Vmsan.Network.Policy.NetworkPolicy).</summary>
    public string Policy { get; init; } = "allow-all";

    public string[]? AllowedDomains { get; init; }
    public string[]? AllowedCidrs { get; init; }
    public string[]? DeniedCidrs { get; init; }

    /// <summary>Ports published from the namespace vmsan runs in to the guest; kept across stop/start.</summary>
    public PublishedPort[]? PublishedPorts { get; init; }
}

/// <summary>
/// <c>[ADDR:]HOST:GUEST[/tcp|/udp]</c>: connections to <paramref name="HostPort"/> on
/// <paramref name="Address"/> (null: every address, loopback included) are forwarded to the guest's <paramref name="GuestPort"/>.
/// </summary>
public sealed record PublishedPort(string? Address, int HostPort, int GuestPort, string Protocol)
{
    public override string ToString() => $"{(Address is null ? "" : (Address.Contains(':', StringComparison.Ordinal) ? $"[{Address}]" : Address) + ":")}{HostPort}:{GuestPort}/{Protocol}";
}

public sealed record VmError(string Code, string Message);

/// <summary>
/// How the VMM process is confined. The switches are what the user asked for (all on unless a
/// <c>--no-*</c> flag turned one off); the rest is what the last launch actually applied.
/// </summary>
public sealed record VmConfinement
{
    /// <summary>Run the VMM as an unprivileged per-VM uid with no capabilities (off: root, every capability).</summary>
    public bool DropPrivileges { get; init; } = true;
    /// <summary>QEMU's seccomp sandbox (<c>-sandbox on,...</c>).</summary>
    public bool Seccomp { get; init; } = true;
    /// <summary>Chroot the VMM into an empty per-VM directory once it has opened its files.</summary>
    public bool Chroot { get; init; } = true;
    /// <summary>A per-VM cgroup with memory, CPU and pids limits from the VM's size.</summary>
    public bool Cgroup { get; init; } = true;

    /// <summary>The uid/gid the VMM runs as (null: root).</summary>
    public int? Uid { get; init; }
    public int? Gid { get; init; }
    /// <summary>The chroot directory (null: none).</summary>
    public string? Jail { get; init; }
    /// <summary>The cgroup the VMM runs in, with its limits (null: none).</summary>
    public VmCgroupState? Cgroups { get; init; }

    public bool IsDefault => DropPrivileges && Seccomp && Chroot && Cgroup;
}

/// <summary>A VM's cgroup: its directories (one per v1 controller, or one v2 directory) and the limits written.</summary>
public sealed record VmCgroupState
{
    /// <summary>1 or 2.</summary>
    public required int Version { get; init; }
    public required IReadOnlyList<string> Paths { get; init; }
    public required long MemoryMaxBytes { get; init; }
    public required long CpuQuotaUs { get; init; }
    public required long CpuPeriodUs { get; init; }
    public required int PidsMax { get; init; }
    /// <summary>False when the host has no swap accounting (v1 without memsw): the guest's RAM may then be swapped.</summary>
    public bool SwapOff { get; init; }
}

/// <summary>The state file of one VM (<c>vms/ID/vm.json</c>). Written atomically, under the VM's lock.</summary>
public sealed record VmRecord
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    public required string Id { get; init; }
    public required VmStatus Status { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required int DiskMib { get; init; }
    public required string Runtime { get; init; }
    public required string Kernel { get; init; }
    public required string Initrd { get; init; }
    public required string BaseImage { get; init; }
    public required string Accel { get; init; }
    public string Backend { get; init; } = "qemu-microvm";
    public required VmNetwork Network { get; init; }
    public ProcessRef? Supervisor { get; init; }
    public ProcessRef? Vmm { get; init; }
    public VmError? Error { get; init; }
    public string? StopReason { get; init; }
    public int? BootMs { get; init; }
    public VmConfinement Confinement { get; init; } = new();

    /// <summary>
    /// File name (in the VM directory) of the disk's writable top layer; null means <c>disk.qcow2</c>. Each snapshot
    /// of the VM freezes the top layer (it becomes read-only, shared with the snapshot by a hard link) and the VM
    /// continues on a new one, <c>disk-SNAPSHOT.qcow2</c>, whose backing name is the frozen layer's, relative.
    /// </summary>
    public string? Disk { get; init; }

    /// <summary>
    /// When the VM's supervisor acts on its timeout (<c>--timeout</c>, <c>vmsan timeout</c>): an absolute time, so it
    /// survives pause/resume, stop/start and restarts of vmsan. Cleared when it fires (then <see cref="TimedOutAt"/>).
    /// </summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>What the timeout does: <c>stop</c> (default), <c>pause</c> or <c>remove</c>.</summary>
    public string? OnTimeout { get; init; }

    /// <summary>
    /// Set by <c>pause --persist</c>: the VM is paused with no VMM; its memory and device state are in
    /// <c>persisted/</c> in its directory, and <c>resume</c> restores it in a new VMM.
    /// </summary>
    public DateTimeOffset? PersistedAt { get; init; }

    /// <summary>When the timeout fired (null: it has not).</summary>
    public DateTimeOffset? TimedOutAt { get; init; }

    /// <summary>The snapshot this VM was cloned from (its disk layers on it while the VM exists), or the boot snapshot a warm create resumed from.</summary>
    public string? RestoreFrom { get; init; }

    /// <summary>
    /// How the VM last came up: <c>cold</c> (a real boot), <c>warm</c> (a create resumed from its runtime's boot
    /// snapshot), <c>snapshot</c> (<c>create --snapshot</c>); null in records from before it was kept.
    /// </summary>
    public string? Boot { get; init; }

    /// <summary>The OCI image the VM was created from (<c>--from-image</c>), with the process defaults its config sets.</summary>
    public VmImage? Image { get; init; }

    /// <summary>Set by the process taking a snapshot while it holds the VM paused; a dead owner is undone by reconcile.</summary>
    public SnapshotJob? SnapshotInProgress { get; init; }

    /// <summary>
    /// The guest device set its VMM was built with (<c>blk,net,rng</c>; null: a VM started before the virtio-rng
    /// device, <c>blk,net</c>). Set at each cold boot; a clone or a persisted VM is restored with the set it was saved with.
    /// </summary>
    public string? Devices { get; init; }
}

/// <summary>
/// The image a VM boots (<c>--from-image</c>): its name, manifest digest and the process defaults of its config.
/// Env, WorkingDir and User are the defaults of every exec in the VM; Entrypoint + Cmd is what <c>run</c> starts
/// when given no command.
/// </summary>
public sealed record VmImage
{
    public required string Name { get; init; }
    public required string ManifestDigest { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyList<string>? ExposedPorts { get; init; }
}

public sealed record SnapshotJob(string SnapshotId, ProcessRef Owner, string TempDir);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VmRecord))]
[JsonSerializable(typeof(VmSecrets))]
[JsonSerializable(typeof(SnapshotManifest))]
public sealed partial class StateJsonContext : JsonSerializerContext;

/// <summary>Kept apart from <see cref="VmRecord"/> in a 0600 file so listing VMs never prints the token.</summary>
public sealed record VmSecrets(string Token);

/// <summary>
/// <c>snapshots/ID/snapshot.json</c>, written last (the directory is renamed into place when complete). Next to
/// it: <c>memory</c> (guest RAM), <c>state</c> (device state), <c>disk.qcow2</c> (the frozen top layer), and
/// <c>secrets.json</c> (the token the guest holds in memory, which the host presents once to re-key a clone).
/// </summary>
public sealed record SnapshotManifest
{
    public int SchemaVersion { get; init; } = 1;
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required string SourceVm { get; init; }
    public required string VmmVersion { get; init; }
    public required string Backend { get; init; }
    public required string Accel { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required int DiskMib { get; init; }
    public required string Runtime { get; init; }
    public required string Kernel { get; init; }
    public required string Initrd { get; init; }
    public required string BaseImage { get; init; }
    public required VmNetwork Network { get; init; }
    /// <summary>The source's image (clones keep its exec defaults).</summary>
    public VmImage? Image { get; init; }
    /// <summary>The source's confinement switches; clones get the same.</summary>
    public VmConfinement Confinement { get; init; } = new();
    /// <summary>
    /// The frozen top layer's file name in the snapshot directory (null: <c>disk.qcow2</c>). The source's own layers
    /// below it are hard-linked beside it under their names, so their relative backing names resolve here too.
    /// </summary>
    public string? DiskLayer { get; init; }

    /// <summary>
    /// The source's guest device set (<c>blk,net,rng</c>); null in snapshots made before it was recorded, whose device
    /// layout had no virtio-rng. Clones are launched with exactly this set; one this vmsan does not build is refused.
    /// </summary>
    public string? Devices { get; init; }

    /// <summary><c>boot</c> for the boot snapshot a warm create resumes from (not listed by <c>snapshot list</c>); null for a user's snapshot.</summary>
    public string? Kind { get; init; }

    /// <summary>A boot snapshot's key inputs, one per line (what its id hashes): kernel, initramfs, agent, image, QEMU build, sizes.</summary>
    public string? BootKey { get; init; }

    public long MemoryBytes { get; init; }
    public long StateBytes { get; init; }
    public int PausedMs { get; init; }
}
