using System.Diagnostics;
using System.Security.Cryptography;
using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Network;
using Vmsan.Network.Policy;
using Vmsan.Snapshots;
using Vmsan.Vmm;
using Vmsan.Vmm.Qemu;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    internal SnapshotStore Snapshots => new(_options.Paths);

    public IReadOnlyList<SnapshotManifest> ListSnapshots() => Snapshots.List();

    public async Task<SnapshotManifest> CreateSnapshotAsync(string id, string? name, CancellationToken ct = default)
    {
        RequireRoot();
        if (name is not null)
            SnapshotStore.ValidateName(name);
        var store = Snapshots;
        store.RemoveAbandonedTemps();
        var snapId = "snap-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        name ??= snapId;
        using var globalLock = _store.LockGlobal();
        if (store.List().Any(m => m.Name == name))
            throw VmsanException.Invalid($"A snapshot named '{name}' already exists.", $"Pick another --name, or remove it with `vmsan snapshot rm {name}`.");
        return await TakeSnapshotAsync(id, snapId, name, kind: null, bootKey: null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The capture itself, into <c>snapshots/SNAPID</c> (a user's <c>snap-…</c>, or a boot snapshot's <c>boot-…</c>
    /// with its <paramref name="kind"/> and key inputs in the manifest).
    /// </summary>
    private async Task<SnapshotManifest> TakeSnapshotAsync(string id, string snapId, string name, string? kind, string? bootKey, CancellationToken ct)
    {
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status != VmStatus.Running)
                throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not running.",
                    rec.Status == VmStatus.Paused ? $"Resume it first: `vmsan resume {id}`." : $"Start it with `vmsan start {id}`.");
            if (rec.Backend == Vmm.Firecracker.FirecrackerBackend.BackendName)
                return await CreateFirecrackerSnapshotLockedAsync(rec, snapId, name, kind, bootKey, ct).ConfigureAwait(false);
            if (!VmDevices.HasRng(VmDevices.Of(rec.Devices)))
                throw new VmsanException(ErrorCode.SnapshotIncompatible, $"VM {id} runs without the virtio-rng device (it was started by an older vmsan); its clones could not have one.",
                    $"Restart it (`vmsan stop {id} && vmsan start {id}`) and snapshot again.");
            var memory = _options.Paths.MemoryFile(id);
            if (!File.Exists(memory))
                throw new VmsanException(ErrorCode.SnapshotIncompatible, $"VM {id} runs without a shared memory file (it is a snapshot clone, or was started by an older vmsan).",
                    rec.RestoreFrom is { } from ? $"Snapshot its source, or use snapshot {from} itself." : $"Restart it (`vmsan stop {id} && vmsan start {id}`) and snapshot again.");
            var tmp = Path.Combine(_options.Paths.SnapshotsDir, $".tmp-{snapId}-{Environment.ProcessId}");
            Directory.CreateDirectory(tmp);
            // Guest RAM, disk and token: root's alone (QEMU opens them as root, before its uid switch).
            File.SetUnixFileMode(tmp, VmStore.PrivateDir);
            var vmDir = _options.Paths.VmDir(id);
            var sw = Stopwatch.StartNew();
            var pausedMs = 0;
            var top = VmDisk.TopFor(rec);
            var newTop = $"disk-{snapId}.qcow2";
            var frozen = false;
            try
            {
                // The snapshot's disk is the VM's own layers (the top, and layers earlier snapshots froze), hard
                // links under their names: relative backing names resolve in the snapshot directory as in the VM's.
                foreach (var layer in Qcow2Chain.Files(Path.Combine(vmDir, top)).Where(f => Path.GetDirectoryName(f) == vmDir))
                {
                    if (!LibcPublic.TryHardLink(layer, Path.Combine(tmp, Path.GetFileName(layer))))
                        throw new VmsanException(ErrorCode.SnapshotIncompatible, $"{_options.Paths.SnapshotsDir} and {vmDir} are on different filesystems; a snapshot's disk is a hard link, never a copy.",
                            "Keep the snapshots directory on the same filesystem as the VM directories (both under VMSAN_HOME).");
                }
                // The layer the VM continues on once the current top is frozen: empty, so a VM that starts on it
                // sees exactly the top's content, whether or not the freeze below happened.
                var newTopPath = Path.Combine(vmDir, newTop);
                await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "qemu-img",
                    ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", top, newTopPath, $"{rec.DiskMib}M"], ct: ct).ConfigureAwait(false);
                if (rec.Confinement.Uid is { } uid)
                    LibcPublic.Chown(newTopPath, uid, rec.Confinement.Gid ?? uid);
                File.SetUnixFileMode(newTopPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                // A chrooted VMM opens it by this same path, inside its jail.
                if (rec.Confinement.Jail is { } jail)
                    Supervision.VmmConfiner.MirrorIntoJail(jail, newTopPath);
                // Recorded first: if this process dies while the VM is paused, the next command resumes it.
                rec = rec with { Disk = newTop, SnapshotInProgress = new SnapshotJob(snapId, ProcessProbe.Ref(Environment.ProcessId)!, tmp) };
                _store.Save(rec);

                string version;
                var netns = $"/proc/{rec.Vmm!.Pid}/ns/net";
                await using (var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
                {
                    version = await control.VersionAsync(ct).ConfigureAwait(false);
                    var (uri, received) = await StateChannel.ReceiveToFileAsync(netns, Path.Combine(tmp, "state"), ct).ConfigureAwait(false);
                    await control.PauseAsync(ct).ConfigureAwait(false);
                    var pause = Stopwatch.StartNew();
                    try
                    {
                        // Disk and memory at one instant: the vCPUs are stopped, the top layer becomes read-only
                        // (the snapshot's layer) and the VM will continue on the new one; nothing is copied.
                        await control.FreezeDiskAsync(newTopPath, ct).ConfigureAwait(false);
                        frozen = true;
                        await control.SaveStateAsync(uri, ct).ConfigureAwait(false);
                        await received.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
                        // Guest RAM is the VMM's shared file, which it writes again after `cont`: copied (sparse).
                        await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--sparse=always", memory, Path.Combine(tmp, "memory")], ct: ct).ConfigureAwait(false);
                        // Fault injection for the kill-during-snapshot test: hold the VM paused here.
                        if (int.TryParse(Vmsan.Core.VmsanEnvironment.Current.FaultSnapshotHoldMs, out var hold) && hold > 0)
                            await Task.Delay(hold, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        await control.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
                        pausedMs = (int)pause.ElapsedMilliseconds;
                    }
                }
                // The frozen layer is shared by the source's chain, the snapshot and its clones: nobody writes it
                // again, and the source's VMM (its uid) can no longer open it for writing.
                var frozenPath = Path.Combine(vmDir, top);
                LibcPublic.Chown(frozenPath, 0, 0);
                File.SetUnixFileMode(frozenPath, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
                SnapshotStore.WriteToken(tmp, _store.LoadSecrets(id).Token);
                var manifest = ManifestFor(rec, snapId, name, version, kind, bootKey) with
                {
                    DiskLayer = top,
                    Devices = VmDevices.Of(rec.Devices),
                    MemoryBytes = new FileInfo(Path.Combine(tmp, "memory")).Length,
                    StateBytes = new FileInfo(Path.Combine(tmp, "state")).Length,
                    PausedMs = pausedMs,
                };
                SnapshotStore.WriteManifest(tmp, manifest);
                Directory.Move(tmp, _options.Paths.SnapshotDir(snapId));
                _store.Save(_store.Load(id) with { SnapshotInProgress = null });
                Log($"snapshot {snapId} of {id} in {sw.ElapsedMilliseconds} ms (paused {pausedMs} ms)");
                return manifest;
            }
            catch
            {
                if (Directory.Exists(tmp))
                    Directory.Delete(tmp, true);
                var now = _store.Load(id) with { SnapshotInProgress = null };
                if (!frozen)
                {
                    // The VM still runs on its old top: forget the unused layer.
                    now = now with { Disk = rec.Disk == newTop ? (top == VmDisk.FileFor(rec.Backend) ? null : top) : now.Disk };
                    TryDeleteFile(Path.Combine(vmDir, newTop));
                    if (rec.Confinement.Jail is { } jail)
                        TryDeleteFile(jail + Path.Combine(vmDir, newTop));
                }
                _store.Save(now);
                throw;
            }
        }
    }

    /// <summary>
    /// Undoes what a snapshot left when its process died mid-way (SIGKILL): the VM is resumed and the unfinished
    /// temp directory is removed. Call with the VM lock held.
    /// </summary>
    private async Task<VmRecord> RecoverSnapshotLockedAsync(VmRecord rec, CancellationToken ct)
    {
        if (rec.SnapshotInProgress is not { } job || ProcessProbe.IsAlive(job.Owner))
            return rec;
        Log($"{rec.Id}: snapshot {job.SnapshotId} was interrupted; resuming the VM");
        if (ProcessProbe.IsAlive(rec.Vmm))
            await TryVmmAsync(rec, c => c.ResumeAsync(ct), ct).ConfigureAwait(false);
        if (Directory.Exists(job.TempDir))
            Directory.Delete(job.TempDir, true);
        rec = rec with { SnapshotInProgress = null, Status = rec.Status == VmStatus.Paused ? VmStatus.Running : rec.Status };
        _store.Save(rec);
        return rec;
    }

    public void RemoveSnapshot(string nameOrId)
    {
        RequireRoot();
        using var globalLock = _store.LockGlobal();
        var m = Snapshots.Find(nameOrId);
        var users = _store.ListIds().Select(_store.TryLoad).Where(r => r?.RestoreFrom == m.Id).Select(r => r!.Id).ToList();
        if (users.Count > 0)
            throw new VmsanException(ErrorCode.SnapshotInUse, $"Snapshot {m.Name} is used by {string.Join(", ", users)} (their memory and disk layer on it).",
                $"Remove those VMs first: `vmsan rm -f {string.Join(' ', users)}`.");
        var dir = _options.Paths.SnapshotDir(m.Id);
        var trash = Path.Combine(_options.Paths.SnapshotsDir, $".tmp-rm-{m.Id[5..]}-{Environment.ProcessId}");
        Directory.Move(dir, trash); // unlisted at once, then deleted
        Directory.Delete(trash, true);
    }

    public async Task<VmInfo> CreateFromSnapshotAsync(string nameOrId, CloneOptions? options = null, CancellationToken ct = default)
    {
        options ??= new CloneOptions();
        options.Check();
        var (timeout, onTimeout) = (options.Timeout, options.OnTimeout);
        RequireRoot();
        var m = Snapshots.Find(nameOrId);
        var snapDir = _options.Paths.SnapshotDir(m.Id);
        // A clone runs under the VMM kind that made the snapshot, of the same build: anything else is refused here,
        // before anything is created.
        var firecracker = m.Backend == Vmm.Firecracker.FirecrackerBackend.BackendName;
        var backend = _options.BackendFor(m.Backend);
        if (backend.Name != m.Backend)
            throw new VmsanException(ErrorCode.SnapshotIncompatible, $"Snapshot {m.Name} was made by the {m.Backend} backend, which this vmsan does not know.");
        if (backend.CheckAvailable() is { } unavailable)
            throw new VmsanException(ErrorCode.SnapshotIncompatible, $"Snapshot {m.Name} was made by {m.VmmVersion} ({m.Backend}); this host cannot run it: {unavailable}.",
                firecracker ? "Clone it on a host with that Firecracker and its jailer installed, or snapshot a QEMU VM here." : "Install QEMU (./install.sh).");
        var devices = VmDevices.Of(m.Devices);
        string? build;
        if (firecracker)
        {
            build = await FirecrackerBuildAsync(ct).ConfigureAwait(false);
            if (build is null || m.VmmVersion != build)
                throw new VmsanException(ErrorCode.SnapshotIncompatible, $"Snapshot {m.Name} was made by {m.VmmVersion}; the installed Firecracker is {build ?? "of an unknown version"}.",
                    "A Firecracker snapshot only loads into the Firecracker version that made it: create the snapshot again with this one.");
        }
        else
        {
            // The clone's QEMU must have the devices the state was saved with; a snapshot from before the virtio-rng
            // device would also give a clone without one.
            if (!VmDevices.IsKnown(devices) || !VmDevices.HasRng(devices))
                throw new VmsanException(ErrorCode.SnapshotIncompatible, $"Snapshot {m.Name} was made with the guest devices '{devices}'; clones need '{VmDevices.Current}' (with the virtio-rng device).",
                    $"Start its source with this vmsan and snapshot it again, then remove the old one (`vmsan snapshot rm {m.Name}`).");
            build = await QemuBuildAsync(ct).ConfigureAwait(false);
            if (build is not null && m.VmmVersion != build)
                throw new VmsanException(ErrorCode.SnapshotIncompatible, $"Snapshot {m.Name} was made by QEMU {m.VmmVersion}; the installed QEMU is {build}.",
                    "A snapshot only loads into the QEMU build that made it: create the snapshot again on this build.");
        }
        string id;
        int slot;
        using (_store.LockGlobal())
        {
            if (!Directory.Exists(snapDir))
                throw new VmsanException(ErrorCode.SnapshotNotFound, $"Snapshot {m.Name} was just removed.");
            // The source's ports, or the caller's: checked under the global lock, like create's, so two clones asking
            // for one port cannot both pass (and a clone of a source that still runs with its ports cannot take them).
            var ports = options.Ports ?? m.Network.PublishedPorts ?? [];
            CheckPortsFree(ports, null);
            (id, slot) = _store.Reserve();
            try
            {
                var plan = VmNetworkPlan.For(id, slot);
                var vmDir = _options.Paths.VmDir(id);
                var network = m.Network with
                {
                    Slot = slot,
                    Netns = plan.NetnsName,
                    HostVeth = plan.HostLink,
                    HostIp = plan.HostAddress.ToString(),
                    NsIp = plan.NamespaceAddress.ToString(),
                    PublishedPorts = ports.Count > 0 ? [.. ports] : null,
                };
                if (options.NetworkPolicy is { } policy)
                    network = network.WithPolicy(policy.Inner);
                if (firecracker)
                {
                    // Firecracker takes raw disks only: the clone's own copy of the snapshot's frozen disk (a reflink
                    // where the filesystem has them, else a sparse copy of what it holds).
                    var raw = Path.Combine(vmDir, VmDisk.Raw);
                    await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--reflink=auto", "--sparse=always", Path.Combine(snapDir, m.DiskLayer ?? VmDisk.Raw), raw], ct: ct).ConfigureAwait(false);
                    File.SetUnixFileMode(raw, VmStore.PrivateFile);
                }
                else
                {
                    await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "qemu-img",
                        ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", Path.Combine(snapDir, m.DiskLayer ?? VmDisk.Qcow2), Path.Combine(vmDir, "disk.qcow2"), $"{m.DiskMib}M"], ct: ct).ConfigureAwait(false);
                }
                _store.SaveSecrets(id, new VmSecrets(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))));
                var createdAt = DateTimeOffset.UtcNow;
                _store.Save(new VmRecord
                {
                    Id = id,
                    Status = VmStatus.Creating,
                    CreatedAt = createdAt,
                    ExpiresAt = createdAt + timeout,
                    OnTimeout = timeout is null ? null : onTimeout,
                    Vcpus = m.Vcpus,
                    MemoryMib = m.MemoryMib,
                    DiskMib = m.DiskMib,
                    Runtime = m.Runtime,
                    Kernel = m.Kernel,
                    Initrd = m.Initrd,
                    BaseImage = m.BaseImage,
                    Image = m.Image,
                    Accel = m.Accel,
                    Backend = m.Backend,
                    RestoreFrom = m.Id,
                    Boot = "snapshot",
                    Devices = firecracker ? null : devices,
                    Confinement = m.Confinement,
                    // The source's settings (or the caller's policy and ports), in this VM's own namespace and slot.
                    Network = network,
                });
            }
            catch
            {
                _store.Delete(id);
                throw;
            }
        }
        Log($"clone {id} of snapshot {m.Name} ({m.Id}){(options.NetworkPolicy is null ? "" : ", own policy")}{(options.PublishedPorts is null ? "" : ", own ports")}");
        return await LaunchSupervisorAndWaitAsync(id, ct).ConfigureAwait(false);
    }

    /// <summary>"7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)" from `qemu-system-x86_64 --version` (cached per binary), or null when it cannot be read.</summary>
    private Task<string?> QemuBuildAsync(CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult((_options.Backend as QemuMicrovmBackend)?.VersionOutput() is { } text ? QemuCommandLine.ParseBuild(text) : null);
    }

    private static void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// What every snapshot's manifest takes from its source VM, whichever VMM made it: sizes, boot inputs, network
    /// settings and the confinement switches (without the source's own uid, jail and cgroups).
    /// </summary>
    private static SnapshotManifest ManifestFor(VmRecord rec, string snapId, string name, string version, string? kind, string? bootKey) => new()
    {
        Id = snapId,
        Name = name,
        CreatedAt = DateTimeOffset.UtcNow,
        SourceVm = rec.Id,
        VmmVersion = version,
        Backend = rec.Backend,
        Accel = rec.Accel,
        Vcpus = rec.Vcpus,
        MemoryMib = rec.MemoryMib,
        DiskMib = rec.DiskMib,
        Runtime = rec.Runtime,
        Kernel = rec.Kernel,
        Initrd = rec.Initrd,
        BaseImage = rec.BaseImage,
        Image = rec.Image,
        Network = rec.Network,
        Confinement = rec.Confinement with { Uid = null, Gid = null, Jail = null, Cgroups = null },
        Kind = kind,
        BootKey = bootKey,
    };
}
