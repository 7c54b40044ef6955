using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Vmm.Qemu;

namespace Vmsan.Diagnostics;

/// <summary>One prerequisite checked by <see cref="Doctor"/>.</summary>
/// <param name="Name">What was checked (<c>qemu-img</c>, <c>kernel</c>, ...).</param>
/// <param name="Ok">Whether it passed.</param>
/// <param name="Detail">What was found.</param>
/// <param name="Fix">How to fix a failure.</param>
public sealed record DoctorCheck(string Name, bool Ok, string Detail, string? Fix = null);

/// <summary>What <see cref="Doctor.RunAsync"/> found and repaired.</summary>
/// <param name="Checks">Every check, in order.</param>
/// <param name="Repaired">Leftovers it cleaned up (dead VMs reconciled, leaked namespaces and links removed).</param>
public sealed record DoctorReport(IReadOnlyList<DoctorCheck> Checks, IReadOnlyList<string> Repaired)
{
    /// <summary>True when every check passed.</summary>
    public bool Ok => Checks.All(c => c.Ok);
}

/// <summary>Checks every prerequisite (with a fix for each failure) and reconciles state: VMs whose VMM died, leaked namespaces and links, abandoned reservations.</summary>
public sealed class Doctor(VmsanClient client)
{
    /// <summary>Runs every check and repairs leftovers.</summary>
    /// <param name="ct">Cancels the run.</param>
    /// <exception cref="Errors.VmsanException">A check that could not run at all (PERMISSION_DENIED, ...).</exception>
    public Task<DoctorReport> RunAsync(CancellationToken ct = default) => Errors.PublicErrors.Run(() => RunChecksAsync(ct));

    private async Task<DoctorReport> RunChecksAsync(CancellationToken ct)
    {
        var checks = new List<DoctorCheck>();
        var repaired = new List<string>();
        var paths = client.Paths;

        checks.Add(new("root", LibcPublic.IsRoot(), LibcPublic.IsRoot() ? "running as root" : "not root",
            "Run vmsan as root: it creates namespaces, TAP devices and nftables rules."));
        foreach (var (tool, pkg) in (ReadOnlySpan<(string, string)>)[("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("ip", "iproute2"), ("nft", "nftables"), ("setsid", "util-linux")])
        {
            var path = QemuMicrovmBackend.FindOnPath(tool);
            checks.Add(new(tool, path is not null, path ?? "not found", $"apt-get install {pkg}"));
        }
        var tun = File.Exists("/dev/net/tun") || Directory.Exists("/dev/net");
        checks.Add(new("/dev/net/tun", tun, tun ? "present" : "missing", "modprobe tun"));
        var accel = client.Lifecycle.Options.AccelDetector.Detect("auto");
        checks.Add(new("accelerator", true, $"{accel.Name}: {accel.Reason}" + (accel.TscKhz is { } k ? $" (tsc_early_khz={k})" : "")));
        foreach (var (name, file) in (ReadOnlySpan<(string, string)>)[("kernel", paths.DefaultKernel), ("initrd", paths.DefaultInitrd), ("runtime base", paths.RuntimeRootfs("base"))])
        {
            var ok = File.Exists(file);
            checks.Add(new(name, ok, ok ? file : $"{file} missing", "Run ./install.sh"));
        }
        checks.AddRange(RuntimeImageChecks(repaired));
        if (LibcPublic.IsRoot() && QemuMicrovmBackend.FindOnPath("nft") is not null)
        {
            var ruleset = await client.Lifecycle.Options.Commands.RunAsync("nft", ["list", "ruleset"], ct: ct).ConfigureAwait(false);
            var blockers = ruleset.Ok ? ForwardDropChains(ruleset.Stdout) : [];
            checks.Add(new("forwarding", blockers.Count == 0,
                blockers.Count == 0 ? "no other firewall drops forwarded traffic" : $"forward chains with policy drop: {string.Join(", ", blockers)}; guests may have no network",
                "Allow forwarding for vmsan's transit range, e.g. `iptables -I FORWARD -s 10.231.0.0/16 -j ACCEPT; iptables -I FORWARD -d 10.231.0.0/16 -j ACCEPT`."));
        }
        var homeOk = true;
        try
        {
            Directory.CreateDirectory(paths.VmsDir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            homeOk = false;
        }
        checks.AddRange(ConfinementChecks(accel));
        checks.Add(new("state directory", homeOk, paths.Home, $"Make {paths.Home} writable or set VMSAN_HOME."));
        if (homeOk)
            checks.Add(DiskSpace.Check(client.Lifecycle.Disks(), client.Lifecycle.FreeBytes(), paths.Home));

        if (homeOk && LibcPublic.IsRoot())
        {
            // Reservations left by a create that died before writing vm.json.
            foreach (var dir in Directory.EnumerateDirectories(paths.VmsDir))
            {
                var id = Path.GetFileName(dir);
                if (File.Exists(Path.Combine(dir, "vm.json")))
                    continue;
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) < TimeSpan.FromMinutes(1))
                    continue;
                await client.Lifecycle.Network.TeardownAsync(id, ct).ConfigureAwait(false);
                Directory.Delete(dir, true);
                repaired.Add($"removed abandoned reservation {id}");
            }
            var live = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in client.Lifecycle.Store.ListIds())
            {
                var before = client.Lifecycle.Store.TryLoad(id);
                var after = await client.Lifecycle.ReconcileAsync(id, ct).ConfigureAwait(false);
                if (before is { OnTimeout: TimeoutAction.Remove, ExpiresAt: { } expired } && expired <= DateTimeOffset.UtcNow && after is null)
                    repaired.Add($"{id}: removed (its remove-timeout had expired while its supervisor was dead)");
                if (before is not null && after is not null && before.Status != after.Status)
                    repaired.Add($"{id}: {before.Status.ToString().ToLowerInvariant()} -> {after.Status.ToString().ToLowerInvariant()} ({after.StopReason})");
                if (after is not null && (after.Status is not (VmStatus.Stopped or VmStatus.Error)))
                    live.Add(id);
            }
            foreach (var leaked in await client.Lifecycle.Network.ListLeakedAsync(live, ct).ConfigureAwait(false))
            {
                if (!client.Lifecycle.OwnsNetwork(leaked.VmId))
                    continue;
                await client.Lifecycle.Network.TeardownAsync(leaked.VmId, ct).ConfigureAwait(false);
                repaired.Add($"removed leaked {leaked.Kind.ToString().ToLowerInvariant()} {leaked.Name}");
            }
            // Cgroups of VMs that are not running (a supervisor killed before it removed them).
            foreach (var (id, dirs) in Vmm.Cgroups.VmCgroup.ListAll())
            {
                if (live.Contains(id) || !client.Lifecycle.OwnsNetwork(id) || !Vmm.Cgroups.VmCgroup.IsEmpty(dirs))
                    continue;
                if (Vmm.Cgroups.VmCgroup.RemovePaths(dirs))
                    repaired.Add($"removed leaked cgroup {id} ({string.Join(", ", dirs)})");
            }
        }
        return new DoctorReport(checks, repaired);
    }

    /// <summary>
    /// Per built runtime: which version is current and how many superseded ones nothing uses (<c>vmsan runtimes
    /// prune</c> removes them; left to it, since VMs of another VMSAN_HOME on these assets may use them while
    /// stopped). Leftovers of killed builds (temp trees, temp images) are removed here, under the runtime's build
    /// lock, unless something is still mounted inside one (then the next build unmounts and removes it).
    /// </summary>
    private IEnumerable<DoctorCheck> RuntimeImageChecks(List<string> repaired)
    {
        var catalog = new Runtimes.RuntimeCatalog(client.Paths);
        HashSet<string>? inUse = null;
        foreach (var name in catalog.Names())
        {
            var dir = client.Paths.RuntimeDir(name);
            if (!Directory.Exists(dir))
                continue;
            var current = catalog.CurrentImage(name);
            if (current is null)
                continue;
            var stuck = new List<string>();
            if (LibcPublic.IsRoot())
            {
                using var buildLock = FileLock.TryAcquire(catalog.BuildLockPath(name));
                if (buildLock is not null)
                {
                    var mounts = File.ReadAllLines("/proc/mounts").Select(l => l.Split(' ') is { Length: > 1 } f ? f[1] : "").ToList();
                    var leftovers = Directory.EnumerateFileSystemEntries(dir, ".build.*").Where(f => Path.GetFileName(f) != ".build.lock")
                        .Concat(Directory.EnumerateFiles(dir, "*.tmp")).ToList();
                    foreach (var left in leftovers)
                    {
                        if (mounts.Any(m => m.StartsWith(left + "/", StringComparison.Ordinal)))
                        {
                            stuck.Add(left);
                            continue;
                        }
                        if (Directory.Exists(left) && new FileInfo(left).LinkTarget is null)
                            Directory.Delete(left, recursive: true);
                        else
                            File.Delete(left);
                        repaired.Add($"runtime {name}: removed {Path.GetFileName(left)}, left by a build that was killed");
                    }
                }
            }
            inUse ??= client.Lifecycle.BaseImagesInUse();
            var (unused, used) = Runtimes.RuntimeCatalog.Partition(catalog.Versions(name), current, inUse, _ => false);
            var detail = (Path.GetFileName(current).StartsWith("rootfs-", StringComparison.Ordinal) ? Path.GetFileName(current) : $"{Path.GetFileName(current)} (unversioned, from before versioned builds)")
                + $"; older versions: {used.Count} used by VMs/snapshots, {unused.Count} unused"
                + (stuck.Count > 0 ? $"; mounts left inside {string.Join(", ", stuck)}" : "");
            yield return new DoctorCheck($"runtime {name} images", stuck.Count == 0, detail,
                stuck.Count > 0 ? $"vmsan runtimes build {name} unmounts and removes them" : unused.Count > 0 ? "vmsan runtimes prune removes the unused versions" : null);
        }
    }

    /// <summary>
    /// Which confinements this host allows for each backend, and why not where it does not. QEMU:
    /// per-VM uid (needs the vmsan-vmm account and capsh), seccomp (QEMU built with it), chroot
    /// (always, as QEMU starts as root), cgroup limits (v2 controllers or v1 hierarchies).
    /// Firecracker: its binaries and KVM (its jailer applies every confinement itself).
    /// </summary>
    /// <param name="accel">The accelerator the accelerator check found (detected once per run).</param>
    internal static IEnumerable<DoctorCheck> ConfinementChecks(Vmm.AccelChoice accel)
    {
        var gid = Vmm.Confinement.VmmIdentity.AccountGid();
        yield return new("qemu: unprivileged uid", gid is not null,
            gid is not null ? $"per-VM uids from {Vmm.Confinement.VmmIdentity.UidBase}, group {Vmm.Confinement.VmmIdentity.Account} ({gid})" : $"no '{Vmm.Confinement.VmmIdentity.Account}' account",
            "Run ./install.sh (it creates the account), or create VMs with --no-drop-privileges.");
        var capsh = QemuMicrovmBackend.FindOnPath("capsh");
        yield return new("qemu: no capabilities", capsh is not null, capsh is not null ? $"bounding set emptied with {capsh}" : "capsh not found",
            "apt-get install libcap2-bin");
        var qemu = new QemuMicrovmBackend();
        var version = qemu.DetectVersion();
        var seccomp = SandboxSupported();
        yield return new("qemu: seccomp", seccomp, seccomp ? "-sandbox on (obsolete, spawn, resourcecontrol denied)" : "this QEMU was built without seccomp (-sandbox unsupported)",
            "Install Debian's qemu-system-x86 (built with seccomp), or create VMs with --no-seccomp.");
        yield return new("qemu: chroot", version is not null,
            version is null ? "cannot read the QEMU version" : $"QEMU {version}: {Vmm.Qemu.QemuCommandLine.SyntaxFor(version) switch { Vmm.Qemu.QemuPrivilegeSyntax.Legacy => "-chroot/-runas", Vmm.Qemu.QemuPrivilegeSyntax.RunWithChroot => "-run-with chroot=, -runas", _ => "-run-with chroot=,user=" }}",
            "apt-get install qemu-system-x86");
        var (cg, detail) = Vmm.Cgroups.VmCgroup.Probe();
        yield return new("qemu: cgroup limits", cg is not null, detail,
            "Mount cgroup v2 with the memory, cpu and pids controllers (or the v1 hierarchies), or create VMs with --no-cgroup.");
        var fc = QemuMicrovmBackend.FindOnPath("firecracker");
        var jailer = QemuMicrovmBackend.FindOnPath("jailer");
        // Informational (QEMU is the default backend). Under the jailer every confinement is always
        // on: its own uid, chroot, new PID namespace, cgroup limits, Firecracker's seccomp filters.
        yield return new("firecracker (optional)", true,
            fc is null || jailer is null
                ? "not installed (firecracker and jailer are GitHub release binaries; not reachable from every host): --vmm firecracker is unavailable"
                : accel.Kind != Vmm.AccelKind.Kvm
                    ? $"{fc}, {jailer}; unusable here: Firecracker needs KVM ({accel.Reason})"
                    : $"{fc}, {jailer}: jailer with the VM's uid, chroot, PID namespace, cgroup limits and seccomp filters (always on)");
    }

    private static bool SandboxSupported()
    {
        var qemu = QemuMicrovmBackend.FindOnPath(QemuMicrovmBackend.DefaultBinary);
        if (qemu is null)
            return false;
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(qemu) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            // -sandbox is parsed before -version acts: a QEMU without seccomp rejects the option.
            foreach (var a in (string[])["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", "-version"])
                psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is null)
                return false;
            _ = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>
    /// Base chains on the forward hook with a drop policy in tables other than vmsan's. nftables
    /// accepts a packet only if every base chain on a hook does, so vmsan's own accept cannot
    /// override them (Docker's iptables FORWARD DROP is the usual one).
    /// </summary>
    internal static List<string> ForwardDropChains(string ruleset)
    {
        var found = new List<string>();
        string? table = null, chain = null;
        foreach (var raw in ruleset.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("table ", StringComparison.Ordinal))
                table = line[6..].TrimEnd('{', ' ');
            else if (line.StartsWith("chain ", StringComparison.Ordinal))
                chain = line[6..].TrimEnd('{', ' ');
            else if (line.Contains("hook forward", StringComparison.Ordinal) && line.Contains("policy drop", StringComparison.Ordinal)
                     && table is not null && table != "ip vmsan")
                found.Add($"{table} {chain}");
        }
        return found;
    }
}
