using System.Diagnostics;
using Vmsan.Core.Processes;
using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Snapshots;
using Vmsan.Vmm;
using Vmsan.Vmm.Qemu;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    /// <summary>The clone's hard link to its boot snapshot's disk layer, in the VM directory (its top, disk.qcow2, layers on it).</summary>
    internal const string WarmLayer = "disk-boot.qcow2";

    /// <summary>
    /// How a create comes up: <see cref="Snapshot"/> set means warm (resume it); otherwise cold, and with
    /// <see cref="BuildLock"/> held this create builds the boot snapshot <see cref="BootId"/> once its agent answers.
    /// </summary>
    internal sealed record BootChoice(string Reason, string? BootId = null, string? Key = null, SnapshotManifest? Snapshot = null, FileLock? BuildLock = null);

    /// <summary>VMSAN_WARM=0: every create boots cold and no boot snapshot is built (the integration suite's default).</summary>
    internal static bool WarmDisabled => Vmsan.Core.VmsanEnvironment.Current.Warm == "0";

    /// <summary>The key inputs of a plain create, or null with the reason warm create does not apply to it.</summary>
    private async Task<(BootKeyInputs? Inputs, string Reason)> BootInputsAsync(CreateOptions options, IVmmBackend backend, AccelChoice accel, string kernel, string initrd, string baseImage, int diskMib, CancellationToken ct)
    {
        if (options.Cold)
            return (null, "--cold");
        if (WarmDisabled)
            return (null, "VMSAN_WARM=0");
        if (backend.Name != QemuMicrovmBackend.BackendName)
            return (null, $"the {backend.Name} backend has no boot snapshots");
        // A custom kernel or root may carry an agent without re-keying; confinement variants are debugging switches.
        if (options.Kernel is not null || options.Rootfs is not null)
            return (null, "a custom --kernel/--rootfs");
        if (!(options.DropPrivileges && options.Seccomp && options.Chroot && options.Cgroup))
            return (null, "a --no-* confinement switch");
        if (await QemuBuildAsync(ct).ConfigureAwait(false) is not { } build)
            return (null, "the QEMU build could not be read");
        string[] vmsan;
        try
        {
            vmsan = [.. VmsanSupervisorHost.CommandFor(_options.SupervisorExecutable, VmsanSupervisorHost.Verb, "vm-00000000").SkipLast(2)];
        }
        catch (Core.Errors.VmsanException)
        {
            return (null, "no supervisor program");
        }
        var agent = Path.Combine(_options.Paths.Assets, "bin", "vmsan-agent");
        return (new BootKeyInputs
        {
            Backend = backend.Name,
            Kernel = Path.GetFullPath(kernel),
            Initrd = initrd,
            Agent = File.Exists(agent) ? agent : null,
            BaseImage = baseImage,
            Vmsan = vmsan,
            VmmBuild = build,
            Accel = accel.Name,
            KernelArgs = Boot.KernelCommandLine.For(accel),
            TcgCpu = accel.Kind == AccelKind.Tcg ? _options.VmmSettings.TcgCpu : null,
            Devices = VmDevices.Current,
            Vcpus = options.Vcpus,
            MemoryMib = options.MemoryMib,
            DiskMib = diskMib,
        }, "");
    }

    private async Task<BootChoice> ChooseBootAsync(CreateOptions options, IVmmBackend backend, AccelChoice accel, string kernel, string initrd, string baseImage, int diskMib, CancellationToken ct)
    {
        var (inputs, why) = await BootInputsAsync(options, backend, accel, kernel, initrd, baseImage, diskMib, ct).ConfigureAwait(false);
        if (inputs is null)
            return new BootChoice(why);
        var key = BootSnapshotKey.Describe(inputs);
        var bootId = BootSnapshotKey.IdFor(key);
        var store = Snapshots;
        if (store.FindBoot(bootId) is { } ready)
            return new BootChoice($"boot snapshot {bootId}", bootId, key, ready);
        Directory.CreateDirectory(_options.Paths.SnapshotsDir);
        // One create builds it; the others that come meanwhile boot cold rather than wait for it.
        var build = FileLock.TryAcquire(store.BootLockPath(bootId));
        if (build is null)
            return new BootChoice($"no boot snapshot {bootId} yet, and another create is building it", bootId, key);
        if (store.FindBoot(bootId) is { } justBuilt)
        {
            build.Dispose();
            return new BootChoice($"boot snapshot {bootId}", bootId, key, justBuilt);
        }
        return new BootChoice($"no boot snapshot {bootId} yet (vcpus {inputs.Vcpus}, memory {inputs.MemoryMib} MiB, disk {inputs.DiskMib} MiB): this create builds it", bootId, key, BuildLock: build);
    }

    /// <summary>
    /// The boot snapshot of a VM that just booted cold and whose agent has just answered, under the build lock. A failure
    /// leaves no snapshot (the capture's temp directory is removed) and is only reported: the VM itself is fine.
    /// </summary>
    private async Task BuildBootSnapshotAsync(string id, BootChoice choice, CancellationToken ct)
    {
        var bootId = choice.BootId!;
        try
        {
            var store = Snapshots;
            store.RemoveAbandonedTemps();
            // A directory without a readable manifest was never complete (or is from a broken copy): replaced.
            var dir = _options.Paths.SnapshotDir(bootId);
            if (Directory.Exists(dir) && store.FindBoot(bootId) is null)
                Directory.Delete(dir, true);
            var sw = Stopwatch.StartNew();
            // One exec first, as the default user, so the snapshot holds a guest that has spawned a process: the
            // agent's exec path initialised and the programs a first exec runs in the guest's page cache. Every warm
            // VM's first exec then starts from there instead of reading them from its disk (a clone's exec table
            // starts empty, so this exec is not seen in any of them).
            await ExecAsync(id, new ExecRequest(["sh", "-c", "true"]), null, null, ct).ConfigureAwait(false);
            var m = await TakeSnapshotAsync(id, bootId, bootId, SnapshotKinds.Boot, choice.Key, ct).ConfigureAwait(false);
            Log($"boot snapshot {bootId} built from {id} in {sw.ElapsedMilliseconds} ms (memory {m.MemoryBytes / (1024 * 1024)} MiB file, paused {m.PausedMs} ms)");
        }
        catch (Exception ex) when (ex is Core.Errors.VmsanException or IOException or UnauthorizedAccessException or TimeoutException)
        {
            _options.Warn?.Invoke($"the boot snapshot {bootId} could not be built ({ex.Message}); creates keep booting cold until one is.");
        }
    }

    /// <summary>
    /// The warm VM's disk: a hard link to the boot snapshot's layer (so removing the snapshot never touches a VM made
    /// from it) and an empty top layer over it, relative, like a snapshot's chain. A boot snapshot has one layer: it is
    /// made from a VM that booted cold moments before, on its first overlay.
    /// </summary>
    private async Task PrepareWarmDiskAsync(SnapshotManifest snap, string vmDir, int diskMib, CancellationToken ct)
    {
        var layer = Path.Combine(vmDir, WarmLayer);
        var source = Path.Combine(_options.Paths.SnapshotDir(snap.Id), snap.DiskLayer ?? VmDisk.Qcow2);
        if (!LibcPublic.TryHardLink(source, layer))
            throw new Core.Errors.VmsanException(Core.Errors.ErrorCode.SnapshotIncompatible, $"{_options.Paths.SnapshotsDir} and {vmDir} are on different filesystems; a warm VM's disk is a hard link, never a copy.",
                "Keep VMSAN_HOME on one filesystem, or create with --cold.");
        var overlay = Path.Combine(vmDir, VmDisk.Qcow2);
        await _options.Commands.RunCheckedAsync(Core.Errors.ErrorCode.Internal, "qemu-img",
            ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", WarmLayer, overlay, $"{diskMib}M"], ct: ct).ConfigureAwait(false);
        File.SetUnixFileMode(overlay, VmStore.PrivateFile);
    }

    public async Task<IReadOnlyList<string>> PruneBootSnapshotsAsync(bool all = false, CancellationToken ct = default)
    {
        RequireRoot();
        var build = await QemuBuildAsync(ct).ConfigureAwait(false);
        var removed = new List<string>();
        using var globalLock = _store.LockGlobal();
        var restoring = _store.ListIds().Select(_store.TryLoad)
            .Where(r => r is { Status: VmStatus.Creating or VmStatus.Starting } && r.RestoreFrom is not null)
            .Select(r => r!.RestoreFrom!).ToHashSet();
        foreach (var m in Snapshots.ListBoot())
        {
            if (restoring.Contains(m.Id) || (!all && !IsStaleBoot(m, build)))
                continue;
            var trash = Path.Combine(_options.Paths.SnapshotsDir, $".tmp-rm-{m.Id[5..]}-{Environment.ProcessId}");
            Directory.Move(_options.Paths.SnapshotDir(m.Id), trash); // unlisted at once, then deleted
            Directory.Delete(trash, true);
            removed.Add(m.Id);
        }
        return removed;
    }

    /// <summary>Stale: its recorded inputs, stamped again now, no longer hash to its id (or it records none).</summary>
    internal static bool IsStaleBoot(SnapshotManifest m, string? vmmBuild)
    {
        if (m.BootKey is not { } key || (vmmBuild is not null && m.VmmVersion != vmmBuild))
            return true;
        var lines = key.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var restamped = string.Concat(lines.Select(l => Restamp(l) + "\n"));
        return BootSnapshotKey.IdFor(restamped) != m.Id;
    }

    /// <summary>A file line (<c>kernel=PATH SIZE TICKS</c>) with the file's size and time as they are now.</summary>
    private static string Restamp(string line)
    {
        var eq = line.IndexOf('=', StringComparison.Ordinal);
        var name = line[..eq];
        var value = line[(eq + 1)..];
        if (name is not ("kernel" or "initrd" or "agent" or "base" or "vmsan") || value == "none")
            return line;
        // The path is everything before the last two fields (size, time) or before " absent".
        var parts = value.Split(' ');
        var path = value.EndsWith(" absent", StringComparison.Ordinal) ? value[..^" absent".Length] : string.Join(' ', parts[..^2]);
        return $"{name}={BootSnapshotKey.Stamp(path)}";
    }
}

/// <summary>Values of <see cref="SnapshotManifest.Kind"/>.</summary>
internal static class SnapshotKinds
{
    public const string Boot = "boot";
}
