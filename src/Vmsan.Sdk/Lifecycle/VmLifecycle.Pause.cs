using System.Diagnostics;
using Vmsan.Core.Errors;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Snapshots;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    /// <summary>Where <c>pause --persist</c> keeps a VM's memory and device state while its VMM is gone.</summary>
    internal const string PersistDir = "persisted";

    public async Task<VmInfo> PauseAsync(string id, bool persist = false, CancellationToken ct = default)
    {
        RequireRoot();
        VmRecord rec;
        using (_store.LockVm(RequireId(id)))
        {
            rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.PersistedAt is not null || (rec.Status == VmStatus.Paused && !persist))
                return VmInfo.From(rec);
            if (rec.Status is not (VmStatus.Running or VmStatus.Paused))
                throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not running.",
                    $"Only a running VM can be paused; start it with `vmsan start {id}`.");
            if (!persist)
            {
                await using (var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
                    await control.PauseAsync(ct).ConfigureAwait(false);
                rec = rec with { Status = VmStatus.Paused };
                _store.Save(rec);
                return VmInfo.From(rec);
            }
            rec = await PersistLockedAsync(rec, ct).ConfigureAwait(false);
        }
        // The supervisor sees the VMM end, tears the network down and records it; it needs the VM lock for that.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline && (ProcessProbe.IsAlive(rec.Vmm) || ProcessProbe.IsAlive(_store.Load(id).Supervisor)))
            await Task.Delay(20, ct).ConfigureAwait(false);
        return VmInfo.From(_store.Load(id));
    }

    private async Task<VmRecord> PersistLockedAsync(VmRecord rec, CancellationToken ct)
    {
        var id = rec.Id;
        var memory = _options.Paths.MemoryFile(id);
        if (rec.Backend == Vmm.Firecracker.FirecrackerBackend.BackendName)
            throw new VmsanException(ErrorCode.SnapshotIncompatible, $"VM {id} runs under Firecracker: pause --persist is not implemented for Firecracker VMs.",
                $"Pause it without --persist (memory stays in its VMM), or snapshot it (`vmsan snapshot create {id}`).");
        if (!File.Exists(memory))
            throw new VmsanException(ErrorCode.SnapshotIncompatible, $"VM {id} has no shared memory file (it is a snapshot clone: its RAM is private), so it cannot be persisted.",
                $"Pause it without --persist, or stop it (`vmsan stop {id}`).");
        var vmDir = _options.Paths.VmDir(id);
        var dir = Path.Combine(vmDir, PersistDir);
        var tmp = dir + ".tmp";
        if (Directory.Exists(tmp))
            Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        var sw = Stopwatch.StartNew();
        var wasRunning = rec.Status == VmStatus.Running;
        try
        {
            await using var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false);
            var (uri, received) = await StateChannel.ReceiveToFileAsync($"/proc/{rec.Vmm!.Pid}/ns/net", Path.Combine(tmp, "state"), ct).ConfigureAwait(false);
            if (wasRunning)
                await control.PauseAsync(ct).ConfigureAwait(false);
            rec = rec with { Status = VmStatus.Paused };
            _store.Save(rec);
            // The migration's end flushes and inactivates the disk: after it, disk and memory are still and whole.
            await control.SaveStateAsync(uri, ct).ConfigureAwait(false);
            await received.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--sparse=always", memory, Path.Combine(tmp, "memory")], ct: ct).ConfigureAwait(false);
            Directory.Move(tmp, dir);
            // Recorded before the VMM ends, so its supervisor keeps the VM paused instead of calling it stopped.
            rec = rec with { PersistedAt = DateTimeOffset.UtcNow };
            _store.Save(rec);
            await control.QuitAsync(ct).ConfigureAwait(false);
            Log($"{id}: persisted in {sw.ElapsedMilliseconds} ms ({new FileInfo(Path.Combine(dir, "memory")).Length / (1024 * 1024)} MiB of RAM file, sparse)");
            return rec;
        }
        catch
        {
            if (Directory.Exists(tmp))
                Directory.Delete(tmp, true);
            if (rec.PersistedAt is null && wasRunning)
            {
                // Nothing was persisted: the VM continues as it was.
                await TryVmmAsync(rec, c => c.ResumeAsync(CancellationToken.None), CancellationToken.None).ConfigureAwait(false);
                _store.Save(rec with { Status = VmStatus.Running });
            }
            throw;
        }
    }

    public async Task<VmInfo> ResumeAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status == VmStatus.Running)
                return VmInfo.From(rec);
            if (rec.Status != VmStatus.Paused)
                throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not paused.",
                    $"Start it with `vmsan start {id}`.");
            if (rec.PersistedAt is null)
            {
                await using (var control = await _options.BackendFor(rec.Backend).ConnectAsync(QmpSocket(id), ct).ConfigureAwait(false))
                    await control.ResumeAsync(ct).ConfigureAwait(false);
                rec = rec with { Status = VmStatus.Running };
                _store.Save(rec);
                return VmInfo.From(rec);
            }
            if (ProcessProbe.IsAlive(rec.Supervisor))
                throw new VmsanException(ErrorCode.VmBusy, $"VM {id} is still being persisted.", "Try again in a moment.");
            _store.Save(rec with { Status = VmStatus.Starting, Error = null, StopReason = null });
        }
        return await LaunchSupervisorAndWaitAsync(id, ct).ConfigureAwait(false);
    }

    private string QmpSocket(string id) => Path.Combine(_options.Paths.VmDir(id), "qmp.sock");
}
