using System.Diagnostics;
using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Snapshots;
using Vmsan.Vmm.Firecracker;

namespace Vmsan;

/// <summary>
/// Snapshots of Firecracker VMs: Firecracker's own full snapshot (<c>PUT /snapshot/create</c>: device state and the
/// whole guest memory written by Firecracker into its jail) and, since Firecracker has no disk snapshot, a copy of the
/// VM's raw disk made while the vCPUs are stopped (<c>cp --reflink=auto --sparse=always</c>: a reflink where the
/// filesystem has them, else a sparse copy of what the disk holds). Clones load it with <c>PUT /snapshot/load</c>.
/// </summary>
internal sealed partial class VmLifecycle
{
    private FirecrackerBackend FirecrackerVmm =>
        _options.Firecracker as FirecrackerBackend ?? throw new VmsanException(ErrorCode.Internal, "The Firecracker backend is not Firecracker's.");

    /// <summary>Call with the global lock and the VM lock held; <paramref name="rec"/> is running and reconciled.</summary>
    private async Task<SnapshotManifest> CreateFirecrackerSnapshotLockedAsync(VmRecord rec, string snapId, string name, string? kind, string? bootKey, CancellationToken ct)
    {
        var id = rec.Id;
        if (rec.Confinement.Jail is not { } jail || rec.Confinement.Uid is not { } uid)
            throw new VmsanException(ErrorCode.Internal, $"VM {id} runs under Firecracker without the jailer's chroot and uid recorded.");
        var gid = rec.Confinement.Gid ?? uid;
        var jailRoot = FirecrackerVmm.JailRootFor(jail, id);
        var tmp = Path.Combine(_options.Paths.SnapshotsDir, $".tmp-{snapId}-{Environment.ProcessId}");
        Directory.CreateDirectory(tmp);
        File.SetUnixFileMode(tmp, VmStore.PrivateDir);
        var sw = Stopwatch.StartNew();
        var disk = Path.Combine(_options.Paths.VmDir(id), VmDisk.TopFor(rec));
        // Recorded first: if this process dies while the VM is paused, the next command resumes it and removes tmp.
        _store.Save(rec with { SnapshotInProgress = new SnapshotJob(snapId, ProcessProbe.Ref(Environment.ProcessId)!, tmp) });
        try
        {
            string version;
            (string State, string Memory, int PausedMs) taken;
            await using (var control = await FirecrackerVmm.ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
            {
                var fc = (FirecrackerControl)control;
                version = await fc.VersionAsync(ct).ConfigureAwait(false);
                taken = await FirecrackerSnapshot.CreateAsync(fc, jailRoot, uid, gid,
                    async c => await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--reflink=auto", "--sparse=always", disk, Path.Combine(tmp, VmDisk.Raw)], ct: c).ConfigureAwait(false),
                    ct).ConfigureAwait(false);
            }
            // Out of the jail (same filesystem: a rename), root's: read-only for every clone's uid, which reaches them
            // only through a hard link in its own jail (the snapshot directory is root's, 0700). The disk is copied per
            // clone, so it stays root's alone.
            var state = Path.Combine(tmp, "state");
            var memory = Path.Combine(tmp, "memory");
            File.Move(taken.State, state);
            File.Move(taken.Memory, memory);
            foreach (var f in (string[])[state, memory])
            {
                LibcPublic.Chown(f, 0, 0);
                File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
            File.SetUnixFileMode(Path.Combine(tmp, VmDisk.Raw), VmStore.PrivateFile);
            Directory.Delete(FirecrackerSnapshot.HostPath(jailRoot, FirecrackerSnapshot.Dir), recursive: true);
            SnapshotStore.WriteToken(tmp, _store.LoadSecrets(id).Token);
            var manifest = ManifestFor(rec, snapId, name, version, kind, bootKey) with
            {
                DiskLayer = VmDisk.Raw,
                MemoryBytes = new FileInfo(memory).Length,
                StateBytes = new FileInfo(state).Length,
                PausedMs = taken.PausedMs,
            };
            SnapshotStore.WriteManifest(tmp, manifest);
            Directory.Move(tmp, _options.Paths.SnapshotDir(snapId));
            _store.Save(_store.Load(id) with { SnapshotInProgress = null });
            Log($"snapshot {snapId} of {id} (Firecracker) in {sw.ElapsedMilliseconds} ms (paused {taken.PausedMs} ms, disk copied while paused)");
            return manifest;
        }
        catch
        {
            if (Directory.Exists(tmp))
                Directory.Delete(tmp, true);
            _store.Save(_store.Load(id) with { SnapshotInProgress = null });
            throw;
        }
    }

    /// <summary>"firecracker 1.17.0" from the installed <c>firecracker --version</c>, or null when it cannot be read.</summary>
    private async Task<string?> FirecrackerBuildAsync(CancellationToken ct)
    {
        try
        {
            var r = await _options.Commands.RunAsync(FirecrackerVmm.ExecFile, ["--version"], ct: ct).ConfigureAwait(false);
            return FirecrackerSnapshot.ParseVersion(r.Stdout);
        }
        catch (Exception ex) when (ex is VmsanException or IOException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
