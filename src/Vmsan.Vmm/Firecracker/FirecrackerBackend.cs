using System.Diagnostics;
using System.Globalization;
using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Vmm.Qemu;

namespace Vmsan.Vmm.Firecracker;

/// <summary>
/// Firecracker behind <see cref="IVmmBackend"/>, always started through its jailer: a dedicated
/// non-root uid/gid (the VM's own, as for QEMU), the jailer's chroot, the VM's cgroup (the jailer
/// writes the limits into the cgroup directory vmsan already created and records), a new PID
/// namespace, the VM's network namespace, and Firecracker's default seccomp filters.
/// <para>
/// The jail is <c>&lt;Jail&gt;/firecracker/&lt;id&gt;/root</c> under the VM's directory; the kernel,
/// initramfs and the raw disk are hard-linked into it before the jailer runs (the jailer then
/// chowns the jail root to the VM's uid). The disk is a link, not a copy, so guest writes land in
/// the VM's own <c>disk.raw</c>. <see cref="VmLaunchSpec.ControlSocket"/> becomes a symlink to the
/// API socket inside the jail, so every other command connects to it by the usual path.
/// </para>
/// </summary>
public sealed class FirecrackerBackend : IVmmBackend
{
    public const string BackendName = "firecracker";

    private readonly string _firecracker;
    private readonly string _jailer;

    public FirecrackerBackend(string? firecracker = null, string? jailer = null)
    {
        _firecracker = firecracker ?? "firecracker";
        _jailer = jailer ?? "jailer";
    }

    public string Name => BackendName;

    /// <summary>Time the jailer gets to write the pid file and Firecracker to open its API socket.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public string? CheckAvailable()
    {
        var missing = new[] { _firecracker, _jailer }.Where(b => QemuMicrovmBackend.FindOnPath(b) is null).ToList();
        return missing.Count == 0 ? null : $"{string.Join(" and ", missing)} not found on PATH";
    }

    /// <summary>The Firecracker binary this backend runs (its full path when it is on PATH).</summary>
    public string ExecFile => QemuMicrovmBackend.FindOnPath(_firecracker) ?? _firecracker;

    /// <summary>This backend's jail root for a VM whose chroot base is <paramref name="chrootBase"/>.</summary>
    public string JailRootFor(string chrootBase, string vmId) => JailRoot(chrootBase, ExecFile, vmId);

    /// <summary>Where the jailer builds this VM's root: <c>&lt;chrootBase&gt;/&lt;exec file name&gt;/&lt;id&gt;/root</c>.</summary>
    public static string JailRoot(string chrootBase, string firecrackerPath, string vmId) =>
        Path.Combine(chrootBase, Path.GetFileName(firecrackerPath), vmId, "root");

    public async Task<VmmProcess> LaunchAsync(VmLaunchSpec spec, CancellationToken ct)
    {
        var firecracker = QemuMicrovmBackend.FindOnPath(_firecracker);
        var jailer = QemuMicrovmBackend.FindOnPath(_jailer);
        if (firecracker is null || jailer is null)
            throw new VmsanException(ErrorCode.DependencyMissing, $"The Firecracker backend needs {CheckAvailable()}.",
                "Run ./install.sh --vmm firecracker where GitHub release downloads are reachable, or put firecracker and jailer (same version) on PATH; or use --vmm qemu.");
        var c = spec.Confinement;
        // The jailer always chroots and always drops to the uid it is given: running it as uid 0
        // (what the reference tool did) would leave an escaped VMM root on the host.
        if (c.Uid is not { } uid || c.Gid is not { } gid)
            throw VmsanException.Invalid("The Firecracker backend always runs its VMM unprivileged: --no-drop-privileges is not offered with --vmm firecracker.",
                "Drop --no-drop-privileges, or use --vmm qemu.");
        if (c.Jail is null)
            throw VmsanException.Invalid("The Firecracker backend always runs its VMM in the jailer's chroot: --no-chroot is not offered with --vmm firecracker.",
                "Drop --no-chroot, or use --vmm qemu.");
        if (!string.Equals(spec.DiskFormat, "raw", StringComparison.Ordinal))
            throw VmsanException.Invalid($"Firecracker takes raw disks only, not {spec.DiskFormat}.");
        if (spec.Incoming && (spec.StateFile is null || spec.MemoryFile is null))
            throw new VmsanException(ErrorCode.Internal, "A Firecracker restore needs the snapshot's state and memory files.");

        var root = JailRoot(c.Jail, firecracker, spec.VmId);
        PrepareJail(root, spec, uid, gid);
        if (spec.Incoming)
            FirecrackerSnapshot.LinkIntoJail(root, spec.StateFile!, spec.MemoryFile!, uid, gid);

        var args = FirecrackerBoot.JailerArgs(spec, firecracker, c.Jail, uid, gid, c.CgroupVersion ?? 1, c.Limits, c.CgroupParent, c.Seccomp);
        // sh only redirects Firecracker's serial console (its stdout) into the console log and
        // execs the jailer; the jailer closes every other descriptor itself.
        var psi = new ProcessStartInfo { FileName = "/bin/sh", UseShellExecute = false, RedirectStandardInput = true };
        foreach (var a in (string[])["-c", "exec \"$0\" \"$@\" >>\"$VMSAN_CONSOLE\" 2>&1", jailer])
            psi.ArgumentList.Add(a);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["VMSAN_CONSOLE"] = spec.ConsoleLog;

        var apiSocket = Path.Combine(root, FirecrackerBoot.ApiSocket.TrimStart('/'));
        var pidFile = Path.Combine(root, Path.GetFileName(firecracker) + ".pid");
        using var jailerProcess = Process.Start(psi) ?? throw new VmsanException(ErrorCode.VmmFailed, "The jailer did not start.");
        var deadline = DateTime.UtcNow + StartTimeout;
        int pid;
        // --new-pid-ns: the jailer clones Firecracker into a new PID namespace, writes the child's
        // (host) pid next to the exec file in the jail and exits 0.
        while (true)
        {
            if (TryReadPid(pidFile) is { } p)
            {
                pid = p;
                break;
            }
            if (jailerProcess.HasExited && TryReadPid(pidFile) is null)
                throw new VmsanException(ErrorCode.VmmFailed, $"The jailer exited with code {jailerProcess.ExitCode} before Firecracker started.",
                    $"See the console log ({spec.ConsoleLog}).");
            if (DateTime.UtcNow > deadline)
            {
                jailerProcess.Kill(entireProcessTree: true);
                throw new VmsanException(ErrorCode.VmmFailed, $"The jailer did not start Firecracker within {StartTimeout.TotalSeconds:0} s.");
            }
            await Task.Delay(5, ct).ConfigureAwait(false);
        }
        var vmm = ProcessProbe.Ref(pid);
        var exited = WatchAsync(vmm);
        try
        {
            while (!File.Exists(apiSocket))
            {
                if (exited.IsCompleted)
                    throw new VmsanException(ErrorCode.VmmFailed, "Firecracker exited before it opened its API socket.", $"See the console log ({spec.ConsoleLog}).");
                if (DateTime.UtcNow > deadline)
                    throw new VmsanException(ErrorCode.VmmFailed, $"Firecracker did not open its API socket within {StartTimeout.TotalSeconds:0} s.");
                await Task.Delay(5, ct).ConfigureAwait(false);
            }
            File.Delete(spec.ControlSocket); // a previous boot's link (File.Delete removes the link, not its target)
            File.CreateSymbolicLink(spec.ControlSocket, apiSocket);
            using var api = new FirecrackerApiClient(apiSocket);
            // A clone (or a restore) loads its snapshot instead of booting; it stays paused for the caller to resume.
            if (spec.Incoming)
                await FirecrackerSnapshot.LoadAsync(api, ct).ConfigureAwait(false);
            else
                await FirecrackerBoot.ConfigureAndStartAsync(api, spec, ct).ConfigureAwait(false);
        }
        catch
        {
            ProcessProbe.Kill(vmm);
            throw;
        }
        return new VmmProcess(pid, exited);
    }

    /// <summary>
    /// The jail root with the boot files hard-linked in (same inode: the guest's disk writes reach
    /// the VM's own file), and <c>/run</c> for the API socket, all owned by the VM's uid.
    /// </summary>
    private static void PrepareJail(string root, VmLaunchSpec spec, int uid, int gid)
    {
        var instanceDir = Path.GetDirectoryName(root)!;
        if (Directory.Exists(instanceDir))
            Directory.Delete(instanceDir, recursive: true); // a previous boot's jail: the jailer refuses an existing pid file
        Directory.CreateDirectory(Path.Combine(root, "run"));
        LinkInto(spec.Kernel, Path.Combine(root, FirecrackerBoot.Kernel.TrimStart('/')), uid, gid, shared: true);
        LinkInto(spec.Initrd, Path.Combine(root, FirecrackerBoot.Initrd.TrimStart('/')), uid, gid, shared: true);
        LinkInto(spec.Disk, Path.Combine(root, FirecrackerBoot.RootDisk.TrimStart('/')), uid, gid, shared: false);
        LibcPublic.Chown(Path.Combine(root, "run"), uid, gid);
        // Firecracker's logger (and metrics) take an existing file or named pipe (its docs have it
        // created first): both exist before it starts, writable by the VM's uid only.
        foreach (var f in (string[])[FirecrackerBoot.LogFile, FirecrackerBoot.MetricsFile])
        {
            var path = Path.Combine(root, f.TrimStart('/'));
            File.WriteAllBytes(path, []);
            LibcPublic.Chown(path, uid, gid);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>
    /// Hard link where possible. Shared read-only files (kernel) are copied when they live on another
    /// filesystem; the disk must be a link (a copy would lose the guest's writes), so a disk on
    /// another filesystem than the jail is an error.
    /// </summary>
    private static void LinkInto(string source, string target, int uid, int gid, bool shared)
    {
        try
        {
            LibcPublic.Link(source, target);
        }
        catch (IOException) when (shared)
        {
            File.Copy(source, target, overwrite: true);
        }
        catch (IOException ex)
        {
            throw new VmsanException(ErrorCode.VmmFailed, $"Cannot link the VM's disk into the Firecracker jail: {ex.Message}",
                "Keep VMSAN_HOME on one filesystem (the jail lives in the VM's directory).", ex);
        }
        if (!shared)
            LibcPublic.Chown(target, uid, gid);
    }

    private static int? TryReadPid(string pidFile)
    {
        try
        {
            var text = File.ReadAllText(pidFile).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
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

    /// <summary>
    /// Firecracker is not our child (the jailer cloned it and exited), so its exit code cannot be
    /// collected: poll for it to go away (pid + start time, so a reused pid is not mistaken for it).
    /// </summary>
    private static async Task<int> WatchAsync(ProcessRef? vmm)
    {
        while (ProcessProbe.IsAlive(vmm))
            await Task.Delay(100).ConfigureAwait(false);
        return -1;
    }

    public Task<IVmmControl> ConnectAsync(string controlSocket, CancellationToken ct)
    {
        if (!File.Exists(controlSocket))
            throw new VmsanException(ErrorCode.VmmFailed, $"Firecracker's API socket is gone ({controlSocket}).", "The VM's VMM is not running; see `vmsan get`.");
        return Task.FromResult<IVmmControl>(new FirecrackerControl(new FirecrackerApiClient(controlSocket)));
    }
}
