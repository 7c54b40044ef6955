using Vmsan.Core.State;

namespace Vmsan;

/// <summary>The public view of a VM, as <c>vmsan list --json</c> prints it.</summary>
public sealed record VmInfo
{
    public required string Id { get; init; }
    public required string Status { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required int DiskMib { get; init; }
    public required string Runtime { get; init; }
    public required string Accel { get; init; }
    public required string Backend { get; init; }
    public required string GuestIp { get; init; }
    public required string Netns { get; init; }
    public required string NetworkPolicy { get; init; }
    public string[]? AllowedDomains { get; init; }
    public string[]? AllowedCidrs { get; init; }
    public string[]? DeniedCidrs { get; init; }
    /// <summary><c>[ADDR:]HOST:GUEST/PROTO</c> for each published port.</summary>
    public string[]? PublishedPorts { get; init; }
    public int? Pid { get; init; }
    public int? BootMs { get; init; }
    public string? StopReason { get; init; }
    public VmError? Error { get; init; }
    public required VmConfinementInfo Confinement { get; init; }
    /// <summary>The OCI image the VM boots (<c>--from-image</c>), with its exposed ports and exec defaults.</summary>
    public VmImage? Image { get; init; }

    public static VmInfo From(VmRecord r) => new()
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
        StopReason = r.StopReason,
        Error = r.Error,
        Confinement = VmConfinementInfo.From(r.Confinement),
        Image = r.Image,
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
    public required bool DropPrivileges { get; init; }
    public required bool Seccomp { get; init; }
    public required bool Chroot { get; init; }
    public required bool Cgroup { get; init; }
    public string? Jail { get; init; }
    public CgroupInfo? Limits { get; init; }

    public static VmConfinementInfo From(VmConfinement c) => new()
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
