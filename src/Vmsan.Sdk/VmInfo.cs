using Vmsan.Core.State;

namespace Vmsan;

/// <summary>The public view of a VM, as <c>vmsan list --json</c> prints it.</summary>
public sealed record VmInfo
{
    /// <summary>The VM id (<c>vm-</c> and 8 hex digits).</summary>
    public required string Id { get; init; }
    /// <summary><c>creating</c>, <c>starting</c>, <c>running</c>, <c>paused</c>, <c>stopping</c>, <c>stopped</c> or <c>error</c>.</summary>
    public required string Status { get; init; }
    /// <summary>When it was created.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When it last booted.</summary>
    public DateTimeOffset? StartedAt { get; init; }
    /// <summary>Virtual CPUs.</summary>
    public required int Vcpus { get; init; }
    /// <summary>Guest RAM in MiB.</summary>
    public required int MemoryMib { get; init; }
    /// <summary>Disk size in MiB.</summary>
    public required int DiskMib { get; init; }
    /// <summary>The runtime image (<c>custom</c> for <c>--rootfs</c>).</summary>
    public required string Runtime { get; init; }
    /// <summary><c>kvm</c> or <c>tcg</c>.</summary>
    public required string Accel { get; init; }
    /// <summary>The VMM backend (<c>qemu-microvm</c>).</summary>
    public required string Backend { get; init; }
    /// <summary>The guest's address inside its namespace (the same for every VM).</summary>
    public required string GuestIp { get; init; }
    /// <summary>The VM's network namespace.</summary>
    public required string Netns { get; init; }
    /// <summary><c>allow-all</c>, <c>deny-all</c> or <c>custom</c>.</summary>
    public required string NetworkPolicy { get; init; }
    /// <summary>Custom policy: allowed domains.</summary>
    public string[]? AllowedDomains { get; init; }
    /// <summary>Custom policy: allowed CIDRs.</summary>
    public string[]? AllowedCidrs { get; init; }
    /// <summary>Custom policy: denied CIDRs (they win over allowed ones).</summary>
    public string[]? DeniedCidrs { get; init; }
    /// <summary><c>[ADDR:]HOST:GUEST/PROTO</c> for each published port.</summary>
    public string[]? PublishedPorts { get; init; }
    /// <summary>The VMM's pid while it runs.</summary>
    public int? Pid { get; init; }
    /// <summary>Milliseconds from VMM start to the agent answering.</summary>
    public int? BootMs { get; init; }
    /// <summary>
    /// How the VM last came up: <c>cold</c> (a real boot), <c>warm</c> (resumed from its runtime's boot snapshot, with its
    /// own identity), <c>snapshot</c> (<c>create --snapshot</c>).
    /// </summary>
    public string? Boot { get; init; }
    /// <summary>Why a stopped VM stopped.</summary>
    public string? StopReason { get; init; }
    /// <summary>Why a VM in <c>error</c> failed.</summary>
    public VmErrorInfo? Error { get; init; }
    /// <summary>When the VM's timeout acts (null: no timeout, or it fired).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary><c>stop</c>, <c>pause</c> or <c>remove</c>, when a timeout is set.</summary>
    public string? OnTimeout { get; init; }
    /// <summary>When <c>pause --persist</c> wrote the VM's memory to disk and ended its VMM (null: not persisted).</summary>
    public DateTimeOffset? PersistedAt { get; init; }
    /// <summary>When the timeout fired.</summary>
    public DateTimeOffset? TimedOutAt { get; init; }
    /// <summary>How the VMM is confined.</summary>
    public required VmConfinementInfo Confinement { get; init; }
    /// <summary>The OCI image the VM boots (<c>--from-image</c>), with its exposed ports and exec defaults.</summary>
    public VmImageInfo? Image { get; init; }

    internal static VmInfo From(VmRecord r) => new()
    {
        Id = r.Id,
        Status = r.Status.ToString().ToLowerInvariant(),
        CreatedAt = r.CreatedAt,
        StartedAt = r.StartedAt,
        Vcpus = r.Vcpus,
        MemoryMib = r.MemoryMib,
        DiskMib = r.DiskMib,
        Runtime = r.Runtime,
        Accel = r.Accel,
        Backend = r.Backend,
        GuestIp = r.Network.GuestIp,
        Netns = r.Network.Netns,
        NetworkPolicy = r.Network.Policy,
        AllowedDomains = r.Network.AllowedDomains,
        AllowedCidrs = r.Network.AllowedCidrs,
        DeniedCidrs = r.Network.DeniedCidrs,
        PublishedPorts = r.Network.PublishedPorts?.Select(p => p.ToString()).ToArray(),
        Pid = r.Status is VmStatus.Running or VmStatus.Paused or VmStatus.Starting or VmStatus.Stopping ? r.Vmm?.Pid : null,
        BootMs = r.BootMs,
        Boot = r.Boot,
        StopReason = r.StopReason,
        Error = r.Error is { } e ? new VmErrorInfo(e.Code, e.Message) : null,
        ExpiresAt = r.ExpiresAt,
        OnTimeout = r.ExpiresAt is null ? null : r.OnTimeout ?? TimeoutAction.Stop,
        TimedOutAt = r.TimedOutAt,
        PersistedAt = r.PersistedAt,
        Confinement = VmConfinementInfo.From(r.Confinement),
        Image = VmImageInfo.From(r.Image),
    };
}

/// <summary>
/// How the VM's VMM is confined: each switch as asked (<c>--no-*</c> turns one off) and, once it
/// has run, what was applied (uid, chroot directory, cgroup limits).
/// </summary>
public sealed record VmConfinementInfo
{
    /// <summary><c>UID:GID</c> the VMM runs as, or <c>root</c>.</summary>
    public required string User { get; init; }
    /// <summary>The VMM runs as its own unprivileged uid with no capabilities.</summary>
    public required bool DropPrivileges { get; init; }
    /// <summary>The VMM's seccomp filter is on.</summary>
    public required bool Seccomp { get; init; }
    /// <summary>The VMM is chrooted into an empty jail.</summary>
    public required bool Chroot { get; init; }
    /// <summary>The VMM runs in a per-VM cgroup with limits.</summary>
    public required bool Cgroup { get; init; }
    /// <summary>The chroot directory.</summary>
    public string? Jail { get; init; }
    /// <summary>The cgroup's limits, once applied.</summary>
    public CgroupInfo? Limits { get; init; }

    internal static VmConfinementInfo From(VmConfinement c) => new()
    {
        User = c.DropPrivileges ? (c.Uid is { } u ? $"{u}:{c.Gid}" : "unprivileged (assigned at start)") : "root",
        DropPrivileges = c.DropPrivileges,
        Seccomp = c.Seccomp,
        Chroot = c.Chroot,
        Cgroup = c.Cgroup,
        Jail = c.Chroot ? c.Jail : null,
        Limits = c.Cgroup && c.Cgroups is { } g
            ? new CgroupInfo(g.Version, g.Paths, g.MemoryMaxBytes / (1024 * 1024), (double)g.CpuQuotaUs / g.CpuPeriodUs, g.PidsMax, g.SwapOff)
            : null,
    };
}

/// <summary>A VM cgroup's limits: memory in MiB (swap off when <see cref="SwapOff"/>), CPUs' worth of quota, pids.</summary>
public sealed record CgroupInfo(int Version, IReadOnlyList<string> Paths, long MemoryMaxMib, double Cpus, int PidsMax, bool SwapOff);

/// <summary>Why a VM is in <c>error</c>: the failure's code (<c>VM_BOOT_FAILED</c>, ...) and message.</summary>
public sealed record VmErrorInfo(string Code, string Message);

/// <summary>The OCI image a VM boots: its name and digest, and the exec defaults and ports its config declares.</summary>
public sealed record VmImageInfo
{
    /// <summary>The image's name (<c>docker.io/library/busybox:latest</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The manifest's digest (<c>sha256:…</c>).</summary>
    public required string ManifestDigest { get; init; }
    /// <summary>Its <c>Env</c> (<c>NAME=value</c>), given to every exec.</summary>
    public IReadOnlyList<string>? Env { get; init; }
    /// <summary>Its <c>WorkingDir</c>, an exec's default directory.</summary>
    public string? WorkingDir { get; init; }
    /// <summary>Its <c>User</c>, an exec's default user.</summary>
    public string? User { get; init; }
    /// <summary>Its <c>Entrypoint</c>.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }
    /// <summary>Its <c>Cmd</c>.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }
    /// <summary>Its <c>ExposedPorts</c> (<c>80/tcp</c>).</summary>
    public IReadOnlyList<string>? ExposedPorts { get; init; }

    internal static VmImageInfo? From(VmImage? i) => i is null ? null : new()
    {
        Name = i.Name, ManifestDigest = i.ManifestDigest, Env = i.Env, WorkingDir = i.WorkingDir, User = i.User,
        Entrypoint = i.Entrypoint, Cmd = i.Cmd, ExposedPorts = i.ExposedPorts,
    };
}
