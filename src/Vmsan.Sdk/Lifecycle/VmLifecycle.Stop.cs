using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.State;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    public async Task<VmInfo> StopAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        VmRecord rec;
        using (_store.LockVm(RequireId(id)))
        {
            rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status is VmStatus.Stopped or VmStatus.Error)
                return VmInfo.From(rec);
            // A paused guest cannot sync and power off: let it run again for the graceful part.
            if (rec.Status == VmStatus.Paused)
                await TryVmmAsync(rec, c => c.ResumeAsync(ct), ct).ConfigureAwait(false);
            rec = rec with { Status = VmStatus.Stopping };
            _store.Save(rec);
        }

        await ShutdownVmmAsync(rec, _options.StopTimeout, ct).ConfigureAwait(false);

        // The supervisor notices the exit and tears the network down; wait for it, and do it
        // ourselves if it is gone (killed, crashed).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            var now = _store.Load(id);
            if (now.Status is VmStatus.Stopped or VmStatus.Error)
                return VmInfo.From(now);
            if (!ProcessProbe.IsAlive(now.Supervisor))
                break;
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
        using (_store.LockVm(id))
            return VmInfo.From(await FinishStoppedLockedAsync(_store.Load(id), "stopped", ct).ConfigureAwait(false));
    }

    /// <summary>Agent power-off, then QMP quit, then SIGKILL, each with a deadline.</summary>
    private async Task ShutdownVmmAsync(VmRecord rec, TimeSpan graceful, CancellationToken ct)
    {
        if (!ProcessProbe.IsAlive(rec.Vmm))
            return;
        try
        {
            using var agent = Lifecycle.VmAgent.For(rec, _store.LoadSecrets(rec.Id).Token);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(5));
            await agent.ShutdownAsync(cts.Token).ConfigureAwait(false);
            Log($"{rec.Id}: agent acknowledged shutdown");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log($"{rec.Id}: agent shutdown failed ({ex.Message}); trying ACPI power button");
            await TryVmmAsync(rec, c => c.PowerdownAsync(ct), ct).ConfigureAwait(false);
        }
        if (await WaitDeadAsync(rec.Vmm, graceful, ct).ConfigureAwait(false))
            return;
        Log($"{rec.Id}: guest did not power off within {graceful.TotalSeconds:0} s; QMP quit");
        await TryVmmAsync(rec, c => c.QuitAsync(ct), ct).ConfigureAwait(false);
        if (await WaitDeadAsync(rec.Vmm, TimeSpan.FromSeconds(3), ct).ConfigureAwait(false))
            return;
        Log($"{rec.Id}: VMM still alive; SIGKILL");
        ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
        await WaitDeadAsync(rec.Vmm, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
    }

    private async Task TryVmmAsync(VmRecord rec, Func<Vmm.IVmmControl, Task> action, CancellationToken ct)
    {
        try
        {
            await using var control = await _options.BackendFor(rec.Backend).ConnectAsync(Path.Combine(_options.Paths.VmDir(rec.Id), "qmp.sock"), ct).ConfigureAwait(false);
            await action(control).ConfigureAwait(false);
        }
        catch (VmsanException ex)
        {
            Log($"{rec.Id}: VMM control failed: {ex.Message}");
        }
    }

    internal static async Task<bool> WaitDeadAsync(ProcessRef? p, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (ProcessProbe.IsAlive(p))
        {
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
        return true;
    }

    public async Task RemoveAsync(string id, bool force, CancellationToken ct = default)
    {
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = _store.TryLoad(id);
            if (rec is null)
            {
                // A directory without a state file is a reservation left by a crashed create.
                if (!Directory.Exists(_options.Paths.VmDir(id)))
                    throw VmsanException.NotFound(id);
                await _network.TeardownAsync(id, ct).ConfigureAwait(false);
                _store.Delete(id);
                return;
            }
            // A dead supervisor's expired remove-timeout may remove it right here: then there is nothing left to do.
            if (await ReconcileOrRemoveLockedAsync(rec, ct).ConfigureAwait(false) is not { } reconciled)
                return;
            rec = reconciled;
            if (rec.Status is not (VmStatus.Stopped or VmStatus.Error) && !force)
                throw new VmsanException(ErrorCode.VmAlreadyRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}.",
                    $"Stop it first (`vmsan stop {id}`) or force removal with `vmsan rm -f {id}`.");
            await RemoveLockedAsync(rec, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Kills whatever runs of the VM and deletes it with everything it owns. Call with the VM lock held.</summary>
    private async Task RemoveLockedAsync(VmRecord rec, CancellationToken ct)
    {
        var id = rec.Id;
        // The supervisor kills the VMM and removes the network on SIGTERM (it can: the
        // namespace is mounted in its mount namespace); SIGKILL whatever is left after that.
        ProcessProbe.Kill(rec.Supervisor, LibcPublic.SIGTERM);
        await WaitDeadAsync(rec.Supervisor, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        ProcessProbe.Kill(rec.Supervisor, LibcPublic.SIGKILL);
        ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
        foreach (var orphan in OrphanedVmms(id))
            ProcessProbe.Kill(orphan, LibcPublic.SIGKILL);
        await WaitDeadAsync(rec.Vmm, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        await WaitDeadAsync(rec.Supervisor, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        await _network.TeardownAsync(id, ct).ConfigureAwait(false);
        ReleaseNetwork(id);
        await Supervision.VmmConfiner.RemoveCgroupAsync(rec.Confinement.Cgroups).ConfigureAwait(false);
        DeleteMemoryFile(id);
        _store.Delete(id);
    }

    /// <summary>Loads and reconciles a VM under its lock; null when it does not exist.</summary>
    internal async Task<VmRecord?> ReconcileAsync(string id, CancellationToken ct)
    {
        var rec = _store.TryLoad(id);
        if (rec is null)
            return null;
        if (!NeedsReconcile(rec) && !SnapshotAbandoned(rec))
        {
            // The VMM is gone and its supervisor is cleaning up right now: never report that as running.
            if (rec.Status is VmStatus.Running or VmStatus.Paused && !ProcessProbe.IsAlive(rec.Vmm) && !IsPersisted(rec))
                return rec with { Status = VmStatus.Stopping };
            return rec;
        }
        using (_store.LockVm(id))
        {
            rec = _store.TryLoad(id);
            return rec is null ? null : await ReconcileOrRemoveLockedAsync(rec, ct).ConfigureAwait(false);
        }
    }

    private static bool SnapshotAbandoned(VmRecord rec) =>
        rec.SnapshotInProgress is { } job && !ProcessProbe.IsAlive(job.Owner);

    /// <summary>Paused by <c>pause --persist</c>: no VMM and no supervisor, on purpose.</summary>
    private static bool IsPersisted(VmRecord rec) => rec.Status == VmStatus.Paused && rec.PersistedAt is not null;

    /// <summary>
    /// A VM said to be alive needs repair when its supervisor is gone: either its VMM is gone too (crash, SIGKILL of
    /// both), or the supervisor it recorded died and left the VMM orphaned (nobody would mark it running, tear its
    /// network down or run its DNS filter). Identity is pid + start time, so a recycled pid is not mistaken for it.
    /// A VM persisted by <c>pause --persist</c> has neither on purpose.
    /// </summary>
    private static bool NeedsReconcile(VmRecord rec) =>
        !IsPersisted(rec) && rec.Status is VmStatus.Creating or VmStatus.Starting or VmStatus.Running or VmStatus.Paused or VmStatus.Stopping
        && !ProcessProbe.IsAlive(rec.Supervisor)
        && (rec.Supervisor is not null || !ProcessProbe.IsAlive(rec.Vmm));

    /// <summary>
    /// <see cref="ReconcileOrRemoveLockedAsync"/> for callers that go on with the VM: one removed by its timeout
    /// is VM_NOT_FOUND, saying so.
    /// </summary>
    private async Task<VmRecord> ReconcileLockedAsync(VmRecord rec, CancellationToken ct) =>
        await ReconcileOrRemoveLockedAsync(rec, ct).ConfigureAwait(false)
        ?? throw new VmsanException(ErrorCode.VmNotFound, $"VM {rec.Id} was removed: its timeout (action remove) had expired while its supervisor was dead.",
            "Run `vmsan list` to see the VMs that exist.");

    /// <summary>
    /// A VM said to be alive whose supervisor is gone: its VMM crashed or was SIGKILLed with it, or is an orphan
    /// nobody serves. An expired timeout is applied now (its action, which may remove the VM: then null);
    /// otherwise clean up what it left and record it as stopped.
    /// </summary>
    private async Task<VmRecord?> ReconcileOrRemoveLockedAsync(VmRecord rec, CancellationToken ct)
    {
        rec = await RecoverSnapshotLockedAsync(rec, ct).ConfigureAwait(false);
        if (!NeedsReconcile(rec))
            return rec;
        // A record that was just written by create/start and whose supervisor has not yet recorded
        // itself is legitimately without processes for a moment.
        if (rec.Supervisor is null && rec.Status is VmStatus.Creating or VmStatus.Starting
            && DateTimeOffset.UtcNow - rec.UpdatedAt < TimeSpan.FromSeconds(10))
            return rec;
        if (TimeoutMissed(rec))
            return await ApplyMissedTimeoutLockedAsync(rec, ct).ConfigureAwait(false);
        var booting = rec.Status is VmStatus.Creating or VmStatus.Starting;
        var reason = rec.Status == VmStatus.Stopping ? "stopped"
            : ProcessProbe.IsAlive(rec.Vmm) || OrphanedVmms(rec.Id).Count > 0
                ? $"its supervisor (pid {rec.Supervisor?.Pid}) died{(booting ? " while the VM was booting" : "")}; the orphaned VMM was killed"
                : "the VMM exited unexpectedly";
        Log($"{rec.Id}: reconciling ({reason})");
        return await FinishStoppedLockedAsync(rec, reason, ct).ConfigureAwait(false);
    }

    /// <summary>Tear down the network and mark stopped. Call with the VM lock held.</summary>
    public async Task<VmRecord> FinishStoppedLockedAsync(VmRecord rec, string reason, CancellationToken ct)
    {
        ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
        // A supervisor killed between spawning the VMM and recording its pid leaves one nobody knows: find it by its
        // command line (this VM's name and directory) and kill it too.
        foreach (var orphan in OrphanedVmms(rec.Id))
        {
            Log($"{rec.Id}: killing unrecorded VMM pid {orphan.Pid}");
            ProcessProbe.Kill(orphan, LibcPublic.SIGKILL);
        }
        await WaitDeadAsync(rec.Vmm, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        await _network.TeardownAsync(rec.Id, ct).ConfigureAwait(false);
        ReleaseNetwork(rec.Id);
        await Supervision.VmmConfiner.RemoveCgroupAsync(rec.Confinement.Cgroups).ConfigureAwait(false);
        var dir = _options.Paths.VmDir(rec.Id);
        foreach (var transient in (string[])["qmp.sock", "initrd.img"])
            File.Delete(Path.Combine(dir, transient));
        DeleteMemoryFile(rec.Id);
        // A persisted VM that is stopped loses its saved memory (its disk was flushed when it was persisted).
        if (Directory.Exists(Path.Combine(dir, PersistDir)))
            Directory.Delete(Path.Combine(dir, PersistDir), true);
        var status = rec.Status is VmStatus.Creating or VmStatus.Starting ? VmStatus.Error : VmStatus.Stopped;
        var done = rec with
        {
            Status = status,
            PersistedAt = null,
            Vmm = null,
            Supervisor = null,
            StopReason = reason,
            Error = status == VmStatus.Error ? rec.Error ?? new VmError(ErrorCode.VmBootFailed.ToWire(), reason) : rec.Error,
        };
        _store.Save(done);
        return done;
    }

    /// <summary>The VMM of a VM being persisted ended: network down, RAM freed, the VM stays paused. Call with the VM lock held.</summary>
    public async Task<VmRecord> FinishPersistedLockedAsync(VmRecord rec, CancellationToken ct)
    {
        await _network.TeardownAsync(rec.Id, ct).ConfigureAwait(false);
        ReleaseNetwork(rec.Id);
        await Supervision.VmmConfiner.RemoveCgroupAsync(rec.Confinement.Cgroups).ConfigureAwait(false);
        var dir = _options.Paths.VmDir(rec.Id);
        foreach (var transient in (string[])["qmp.sock", "initrd.img"])
            File.Delete(Path.Combine(dir, transient));
        DeleteMemoryFile(rec.Id);
        var done = rec with { Vmm = null, Supervisor = null };
        _store.Save(done);
        return done;
    }

    /// <summary>
    /// Live processes whose command line names this VM (<c>-name ID</c>) and one of its files in this home's VM
    /// directory: VMMs of this VM, recorded or not. Another home's VM of the same id does not match (its directory differs).
    /// </summary>
    internal List<ProcessRef> OrphanedVmms(string id)
    {
        var found = new List<ProcessRef>();
        var dir = _options.Paths.VmDir(id) + "/";
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid) || pid == Environment.ProcessId)
                continue;
            string[] argv;
            try
            {
                argv = File.ReadAllText(Path.Combine(proc, "cmdline")).Split('\0');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            var named = false;
            for (var i = 0; i + 1 < argv.Length && !named; i++)
                named = argv[i] == "-name" && argv[i + 1] == id;
            if (named && argv.Any(a => a.Contains(dir, StringComparison.Ordinal)) && ProcessProbe.Ref(pid) is { } r)
                found.Add(r);
        }
        return found;
    }

    private void DeleteMemoryFile(string id) => File.Delete(_options.Paths.MemoryFile(id));
}
