using System.Globalization;
using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan.Vmm.Cgroups;

/// <summary>
/// One VM's cgroup. On a cgroup v2 host: <c>/sys/fs/cgroup/vmsan/ID</c> with <c>memory.max</c>,
/// <c>memory.swap.max</c>, <c>cpu.max</c>, <c>pids.max</c>. Where the v1 <c>memory</c>, <c>cpu</c>
/// and <c>pids</c> controllers are mounted instead (v2 then has no controllers), one directory per
/// controller, under the cgroup vmsan itself runs in (so a VM never escapes limits placed on vmsan):
/// <c>memory.limit_in_bytes</c> (+ <c>memory.memsw.limit_in_bytes</c>, swap off, where swap
/// accounting exists), <c>cpu.cfs_quota_us</c>/<c>cpu.cfs_period_us</c>, <c>pids.max</c>.
/// The VMM enters it before it execs (its launcher writes its own pid to <see cref="ProcsFiles"/>),
/// so every allocation and thread is accounted from the start.
/// </summary>
public sealed class VmCgroup
{
    public const string Root = "/sys/fs/cgroup";
    private static readonly string[] V1Controllers = ["memory", "cpu", "pids"];

    private VmCgroup(VmCgroupState state) => State = state;

    public VmCgroupState State { get; }

    /// <summary>The <c>cgroup.procs</c> files a process writes its pid to to enter the cgroup.</summary>
    public IReadOnlyList<string> ProcsFiles => State.Paths.Select(p => Path.Combine(p, "cgroup.procs")).ToList();

    /// <summary>Which cgroup version can hold VM limits here, or null (with the reason) when none can.</summary>
    public static (int? Version, string Detail) Probe(string root = Root)
    {
        if (root == Root)
            EnsureMounted();
        var v2Controllers = TryRead(Path.Combine(root, "cgroup.controllers"));
        if (v2Controllers is not null)
        {
            var have = v2Controllers.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var missing = V1Controllers.Except(have).ToList();
            return missing.Count == 0
                ? (2, $"cgroup v2 at {root} (memory, cpu, pids)")
                : (null, $"cgroup v2 at {root} lacks the {string.Join(", ", missing)} controller(s)");
        }
        var absent = V1Controllers.Where(c => !File.Exists(Path.Combine(root, c, "cgroup.procs"))).ToList();
        if (absent.Count == 0)
        {
            var swap = File.Exists(Path.Combine(root, "memory", "memory.memsw.limit_in_bytes")) ? "swap accounting on" : "no swap accounting (memsw)";
            return (1, $"cgroup v1 controllers memory, cpu, pids at {root} ({swap})");
        }
        return (null, $"no cgroup v2 controllers and no v1 {string.Join(", ", absent)} hierarchy under {root}");
    }

    /// <summary>The directory under which VM cgroups live, per hierarchy (the key is the controller, "" for v2).</summary>
    public static IReadOnlyDictionary<string, string> Parents(int version, string root = Root)
    {
        var custom = Vmsan.Core.VmsanEnvironment.Current.CgroupParent?.Trim('/');
        if (version == 2)
            return new Dictionary<string, string> { [""] = Path.Combine(root, custom is { Length: > 0 } ? custom : "vmsan") };
        var own = OwnV1Cgroups();
        return V1Controllers.ToDictionary(c => c, c =>
        {
            var rel = custom is { Length: > 0 } ? custom : (own.GetValueOrDefault(c, "/").Trim('/') + "/vmsan").Trim('/');
            return Path.Combine(root, c, rel);
        });
    }

    /// <summary>
    /// The VM cgroup's parent relative to its controller's root (<c>vmsan</c>, or <c>user.slice/vmsan</c>...),
    /// the form Firecracker's jailer takes as <c>--parent-cgroup</c>. The jailer takes one parent for every
    /// controller; where v1 controllers sit at different places the memory controller's wins (it is the
    /// limit that protects the host).
    /// </summary>
    public static string RelativeParent(VmCgroupState state, string root = Root)
    {
        var paths = state.Paths;
        var path = state.Version == 1
            ? paths.FirstOrDefault(p => p.StartsWith(Path.Combine(root, "memory") + "/", StringComparison.Ordinal)) ?? paths[0]
            : paths[0];
        var rel = Path.GetRelativePath(root, Path.GetDirectoryName(path)!);
        if (state.Version == 1)
            rel = rel.Contains('/', StringComparison.Ordinal) ? rel[(rel.IndexOf('/', StringComparison.Ordinal) + 1)..] : "";
        return rel;
    }

    /// <summary>v1 <c>cpu.shares</c> of one runnable task (the kernel's default) and the largest value it takes.</summary>
    public const long V1TaskShares = 1024, V1MaxShares = 262_144;

    /// <summary>v2 <c>cpu.weight</c> of one task's worth (the default) and the largest value it takes.</summary>
    public const long V2TaskWeight = 100, V2MaxWeight = 10_000;

    /// <summary>
    /// Creates (or re-creates, after a crash) the VM's cgroup and writes its limits. With
    /// <paramref name="deferCpuQuota"/> the CPU quota is left open (written by <see cref="ApplyCpuQuota"/> once the
    /// VM is ready): a TCG QEMU booting a 1-vCPU guest needs ~7 % of a core for its main loop on top of its vCPU
    /// thread, and a quota of exactly <c>vcpus</c> cores throttled every boot. No code of the VM's user runs
    /// before the agent first answers, and the boot is bounded by the boot timeout.
    /// </summary>
    public static VmCgroup Create(string vmId, CgroupLimits limits, string root = Root, bool deferCpuQuota = false)
    {
        var (version, detail) = Probe(root);
        if (version is null)
            throw new VmsanException(ErrorCode.DependencyMissing, $"Cannot give the VMM a cgroup: {detail}.",
                "Mount the cgroup v2 hierarchy with the memory, cpu and pids controllers (or the v1 ones), or create the VM with --no-cgroup.");
        var inv = CultureInfo.InvariantCulture;
        var paths = new List<string>();
        var swapOff = false;
        try
        {
            if (version == 2)
            {
                var parent = Parents(2, root)[""];
                Directory.CreateDirectory(parent);
                // Controllers must be enabled in every ancestor's subtree_control to reach the VM's cgroup.
                EnableV2Controllers(root, parent);
                var dir = Path.Combine(parent, vmId);
                Directory.CreateDirectory(dir);
                paths.Add(dir);
                Write(dir, "memory.max", limits.MemoryMaxBytes.ToString(inv));
                swapOff = TryWrite(dir, "memory.swap.max", "0");
                Write(dir, "cpu.max", $"{(deferCpuQuota ? "max" : limits.CpuQuotaUs.ToString(inv))} {limits.CpuPeriodUs.ToString(inv)}");
                Write(dir, "cpu.weight", Math.Min(V2MaxWeight, V2TaskWeight * limits.WeightTasks).ToString(inv));
                Write(dir, "pids.max", limits.PidsMax.ToString(inv));
                RebalanceWeight(parent, 2);
            }
            else
            {
                foreach (var (controller, parent) in Parents(1, root))
                {
                    var dir = Path.Combine(parent, vmId);
                    Directory.CreateDirectory(dir);
                    paths.Add(dir);
                    switch (controller)
                    {
                        case "memory":
                            // memsw must never be below the plain limit: lower the plain one first
                            // when re-creating, raise memsw last.
                            Write(dir, "memory.limit_in_bytes", limits.MemoryMaxBytes.ToString(inv));
                            swapOff = TryWrite(dir, "memory.memsw.limit_in_bytes", limits.MemoryMaxBytes.ToString(inv));
                            TryWrite(dir, "memory.swappiness", "0");
                            break;
                        case "cpu":
                            Write(dir, "cpu.cfs_period_us", limits.CpuPeriodUs.ToString(inv));
                            Write(dir, "cpu.cfs_quota_us", deferCpuQuota ? "-1" : limits.CpuQuotaUs.ToString(inv));
                            Write(dir, "cpu.shares", Math.Min(V1MaxShares, V1TaskShares * limits.WeightTasks).ToString(inv));
                            RebalanceWeight(parent, 1);
                            break;
                        case "pids":
                            Write(dir, "pids.max", limits.PidsMax.ToString(inv));
                            break;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RemovePaths(paths);
            throw new VmsanException(ErrorCode.PermissionDenied, $"Cannot set up the VM's cgroup: {ex.Message}",
                "Run vmsan as root on a host whose cgroup filesystem is writable, or create the VM with --no-cgroup.", ex);
        }
        return new VmCgroup(new VmCgroupState
        {
            Version = version.Value,
            Paths = paths,
            MemoryMaxBytes = limits.MemoryMaxBytes,
            CpuQuotaUs = limits.CpuQuotaUs,
            CpuPeriodUs = limits.CpuPeriodUs,
            PidsMax = limits.PidsMax,
            SwapOff = swapOff,
        });
    }

    /// <summary>Writes the CPU quota that <see cref="Create"/> left open (deferred).</summary>
    public static void ApplyCpuQuota(VmCgroupState state)
    {
        var inv = CultureInfo.InvariantCulture;
        try
        {
            foreach (var dir in state.Paths)
            {
                if (state.Version == 2)
                    Write(dir, "cpu.max", $"{state.CpuQuotaUs.ToString(inv)} {state.CpuPeriodUs.ToString(inv)}");
                else if (File.Exists(Path.Combine(dir, "cpu.cfs_quota_us")))
                    Write(dir, "cpu.cfs_quota_us", state.CpuQuotaUs.ToString(inv));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VmsanException(ErrorCode.PermissionDenied, $"Cannot set the VM's CPU quota: {ex.Message}",
                "Run vmsan as root on a host whose cgroup filesystem is writable, or create the VM with --no-cgroup.", ex);
        }
    }

    /// <summary>
    /// Gives the directory holding the VM cgroups (one entity to the scheduler, next to every other task and
    /// cgroup beside it) the sum of its VMs' CPU weights, so that VMs together weigh what their threads would
    /// unconfined, not one task's worth for all of them. Called whenever a VM cgroup comes or goes, under a lock
    /// on the directory (two supervisors at once would otherwise write a sum that misses one). Best effort: the
    /// weight shares CPU under contention, it limits nothing.
    /// </summary>
    internal static void RebalanceWeight(string parent, int version)
    {
        var file = version == 2 ? "cpu.weight" : "cpu.shares";
        if (!File.Exists(Path.Combine(parent, file)))
            return;
        using var fd = Libc.OpenHandle(parent, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd.IsInvalid)
            return;
        while (Libc.Flock(fd, Libc.LOCK_EX) != 0)
        {
            if (System.Runtime.InteropServices.Marshal.GetLastPInvokeError() != Libc.EINTR)
                return;
        }
        long sum = 0;
        foreach (var dir in Directory.EnumerateDirectories(parent, "vm-*"))
        {
            if (long.TryParse(TryRead(Path.Combine(dir, file))?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var w))
                sum += w;
        }
        var (one, max) = version == 2 ? (V2TaskWeight, V2MaxWeight) : (V1TaskShares, V1MaxShares);
        TryWrite(parent, file, Math.Clamp(sum, one, max).ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>How many times the kernel's OOM killer killed a process of this cgroup (v1 memory.oom_control, v2 memory.events).</summary>
    public static long OomKills(VmCgroupState state)
    {
        foreach (var dir in state.Paths)
        {
            var text = TryRead(Path.Combine(dir, state.Version == 2 ? "memory.events" : "memory.oom_control"));
            if (text is null)
                continue;
            foreach (var line in text.Split('\n'))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 2 && parts[0] == "oom_kill" && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                    return n;
            }
        }
        return 0;
    }

    /// <summary>Removes the cgroup's directories; true when none is left. A cgroup that still holds a process stays (EBUSY).</summary>
    public static bool Remove(VmCgroupState? state) => state is null || RemovePaths(state.Paths);

    /// <summary>VM cgroups under vmsan's parents (any hierarchy): id → directories.</summary>
    public static Dictionary<string, List<string>> ListAll(string root = Root)
    {
        var found = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var (version, _) = Probe(root);
        if (version is null)
            return found;
        foreach (var parent in Parents(version.Value, root).Values)
        {
            if (!Directory.Exists(parent))
                continue;
            foreach (var dir in Directory.EnumerateDirectories(parent, "vm-*"))
            {
                var id = Path.GetFileName(dir);
                if (!found.TryGetValue(id, out var list))
                    found[id] = list = [];
                list.Add(dir);
            }
        }
        return found;
    }

    /// <summary>True when no process is left in any of the directories.</summary>
    public static bool IsEmpty(IEnumerable<string> dirs) =>
        dirs.All(d => string.IsNullOrWhiteSpace(TryRead(Path.Combine(d, "cgroup.procs"))));

    public static bool RemovePaths(IEnumerable<string> dirs)
    {
        var ok = true;
        foreach (var dir in dirs)
        {
            try
            {
                // cgroupfs directories hold only control files: rmdir, never a recursive delete.
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir);
                    var parent = Path.GetDirectoryName(dir)!;
                    RebalanceWeight(parent, File.Exists(Path.Combine(parent, "cpu.weight")) ? 2 : 1);
                }
            }
            catch (IOException)
            {
                ok = false;
            }
        }
        return ok;
    }

    private static void EnableV2Controllers(string root, string parent)
    {
        var chain = new List<string> { root };
        var rel = Path.GetRelativePath(root, parent);
        var cur = root;
        foreach (var part in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            cur = Path.Combine(cur, part);
            chain.Add(cur);
        }
        foreach (var dir in chain)
            Write(dir, "cgroup.subtree_control", "+memory +cpu +pids");
    }

    /// <summary>
    /// <c>ip netns exec</c> (how vmsan runs inside a test namespace) remounts /sys for the
    /// namespace, and the cgroup filesystems under /sys/fs/cgroup vanish from that mount
    /// namespace. They are the same hierarchies still (/proc/self/cgroup lists them): mount them
    /// again here, with the same controller sets, in this private mount namespace only.
    /// </summary>
    private static void EnsureMounted()
    {
        if (File.Exists(Path.Combine(Root, "cgroup.controllers")) || File.Exists(Path.Combine(Root, "memory", "cgroup.procs")))
            return;
        var lines = (TryRead("/proc/self/cgroup") ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 3)).Where(p => p.Length == 3).ToList();
        var v1 = lines.Where(p => p[1].Length > 0).Select(p => p[1]).ToList();
        if (v1.Count == 0 && lines.Any(p => p[0] == "0"))
        {
            _ = Libc.Mount("cgroup2", Root, "cgroup2", 0, null);
            return;
        }
        if (!v1.Any(c => c.Split(',').Contains("memory")))
            return;
        if (Libc.Mount("cgroup_root", Root, "tmpfs", 0, "mode=755") != 0)
            return;
        foreach (var controllers in v1)
        {
            var isNamed = controllers.StartsWith("name=", StringComparison.Ordinal);
            var dir = Path.Combine(Root, isNamed ? controllers[5..] : controllers);
            Directory.CreateDirectory(dir);
            _ = Libc.Mount("cgroup", dir, "cgroup", 0, isNamed ? $"none,{controllers}" : controllers);
        }
    }

    private static Dictionary<string, string> OwnV1Cgroups()
    {
        // Lines look like "4:memory:/some/path" (v1) or "0::/path" (v2).
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in (TryRead("/proc/self/cgroup") ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3)
                continue;
            foreach (var c in parts[1].Split(','))
                map[c] = parts[2];
        }
        return map;
    }

    private static void Write(string dir, string file, string value) => File.WriteAllText(Path.Combine(dir, file), value);

    private static bool TryWrite(string dir, string file, string value)
    {
        try
        {
            File.WriteAllText(Path.Combine(dir, file), value);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
