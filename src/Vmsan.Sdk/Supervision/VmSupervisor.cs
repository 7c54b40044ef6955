using System.Diagnostics;
using System.Runtime.InteropServices;
using Vmsan.Boot;
using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Network;
using Vmsan.Network.Logging;
using Vmsan.Network.Policy;
using Vmsan.Snapshots;
using Vmsan.Vmm;
using Vmsan.Vmm.Cgroups;

namespace Vmsan.Supervision;

/// <summary>
/// The per-VM supervisor (<c>HOST __supervise ID</c>, detached from the terminal). It brings the
/// VM's namespace up, runs the VMM, reports readiness in the state file, and when the VMM ends for
/// any reason (stop, guest power-off, crash, SIGKILL) tears the namespace down and records why.
/// What it works with is passed in: the state store, the network manager, the options (paths, backends,
/// timeouts) and the transitions it records its VM's end through (the lifecycle service in production).
/// </summary>
internal sealed class VmSupervisor
{
    private readonly string _id;
    private readonly VmStore _store;
    private readonly IVmNetwork _network;
    private readonly VmsanClientOptions _options;
    private readonly IVmTransitions _transitions;

    public VmSupervisor(string id, VmStore store, IVmNetwork network, VmsanClientOptions options, IVmTransitions transitions)
    {
        _id = id;
        _store = store;
        _network = network;
        _options = options;
        _transitions = transitions;
    }

    private static void Log(string message) =>
        Console.Error.WriteLine($"{DateTimeOffset.UtcNow:O} supervisor[{Environment.ProcessId}]: {message}");

    public async Task<int> RunAsync(CancellationToken ct = default)
    {
        var store = _store;
        var paths = _options.Paths;
        var self = ProcessProbe.Ref(Environment.ProcessId);
        var vmDir = paths.VmDir(_id);
        var sw = Stopwatch.StartNew();
        VmmProcess vmm;
        VmRecord rec;
        var restoring = false;
        Network.Ports.PortForwarder? forwarder = null;

        using (store.LockVm(_id))
        {
            rec = store.Load(_id);
            if (rec.Status is not (VmStatus.Creating or VmStatus.Starting))
            {
                Log($"{_id} is {rec.Status}; nothing to supervise");
                return 0;
            }
            rec = rec with { Supervisor = self };
            store.Save(rec);
            // A persisted or warm VM's RAM file is a copy (on tmpfs) of the saved one: started first, so it runs while
            // the network comes up (the two are independent; both take tens of milliseconds).
            var persisted = rec.PersistedAt is not null;
            restoring = persisted || (rec.RestoreFrom is not null && rec.Status == VmStatus.Creating);
            var ramSource = persisted ? Path.Combine(vmDir, VmLifecycle.PersistDir, "memory")
                : restoring && rec.Boot == "warm" ? Path.Combine(paths.SnapshotDir(rec.RestoreFrom!), "memory")
                : null;
            var ramCopy = ramSource is null ? null : CopyRamAsync(ramSource, paths.MemoryFile(_id), ct);
            try
            {
                var accel = _options.AccelDetector.Detect(rec.Accel);
                _transitions.ClaimNetwork(_id);
                var policy = PolicyOf(rec);
                // The guest's only resolver is the DNS filter on its gateway, under every policy
                // (allow-all forwards every name): a host whose resolver is loopback-only works too.
                await _network.SetupAsync(_id, rec.Network.Slot, policy, Network.VmNetworkPlan.GatewayAddress, ct).ConfigureAwait(false);
                _services = await StartNetworkServicesAsync(rec, policy, ct).ConfigureAwait(false);
                Log($"network up in {sw.ElapsedMilliseconds} ms ({policy}; DNS upstream {_upstream?.ToString() ?? "none"})");
                if (rec.Network.PublishedPorts is { Length: > 0 } ports)
                {
                    forwarder = Network.Ports.PortForwarder.Start(rec.Network.Netns, ports, Log);
                    Log($"published {string.Join(", ", ports.Select(p => p.ToString()))}");
                }
                var initrd = rec.Initrd;
                string memoryFile;
                var shared = true;
                if (ramCopy is not null)
                {
                    // `pause --persist` saved this VM's RAM, or a warm create resumes the boot snapshot's: back onto tmpfs
                    // as the VM's own shared RAM file (a sparse copy), so the VM is like any booted one afterwards (it can be
                    // snapshotted and persisted, and it does not depend on the boot snapshot once running); its device
                    // state loads below.
                    memoryFile = paths.MemoryFile(_id);
                    await ramCopy.ConfigureAwait(false);
                    Log($"RAM copied from {ramSource} after {sw.ElapsedMilliseconds} ms");
                }
                else if (restoring)
                {
                    // A clone: the guest already booted; it maps the snapshot's RAM privately and loads its device state.
                    memoryFile = Path.Combine(paths.SnapshotDir(rec.RestoreFrom!), "memory");
                    shared = false;
                }
                else
                {
                    initrd = Path.Combine(vmDir, "initrd.img");
                    var token = store.LoadSecrets(_id).Token;
                    new GuestConfig(_id, token, rec.Network.GuestIp + "/30", rec.Network.GatewayIp, rec.Network.GatewayIp).WriteInitrd(rec.Initrd, initrd);
                    memoryFile = paths.MemoryFile(_id);
                    File.Delete(memoryFile);
                }
                var console = Path.Combine(vmDir, "console.log");
                if (!restoring || !File.Exists(console))
                {
                    File.WriteAllBytes(console, []);
                    File.SetUnixFileMode(console, VmStore.PrivateFile);
                }
                var (confinement, confined) = VmmConfiner.Prepare(rec, vmDir, accel, _options.VmmSettings, booting: !restoring);
                var backend = _options.BackendFor(rec.Backend);
                var firecracker = backend.Name == Vmm.Firecracker.FirecrackerBackend.BackendName;
                // A restored VM gets the devices its state was saved with; a booting one today's set (QEMU only:
                // Firecracker's devices are its own).
                var devices = restoring ? VmDevices.Of(rec.Devices) : VmDevices.Current;
                rec = rec with { Confinement = confined, Devices = firecracker ? null : devices, Boot = restoring ? rec.Boot : "cold" };
                store.Save(rec);
                // QEMU: attached here (root, in the VM's namespace) and inherited by the VMM, which then
                // needs no network privilege at all; closed on our side once it has started.
                // Firecracker takes no descriptor (its jailer closes them all) and opens the TAP by
                // name: the persistent TAP is handed to the VM's uid instead.
                using var tap = firecracker ? null : await Network.TapDevice.OpenInheritableAsync(rec.Network.Netns, Network.VmNetworkPlan.TapName).ConfigureAwait(false);
                if (firecracker && confinement.Uid is { } fcUid)
                    await Network.TapDevice.SetOwnerAsync(rec.Network.Netns, Network.VmNetworkPlan.TapName, fcUid, confinement.Gid ?? 0).ConfigureAwait(false);
                vmm = await backend.LaunchAsync(new VmLaunchSpec
                {
                    VmId = _id,
                    Vcpus = rec.Vcpus,
                    MemoryMib = rec.MemoryMib,
                    Kernel = rec.Kernel,
                    Initrd = initrd,
                    KernelArgs = KernelCommandLine.For(accel),
                    Disk = Path.Combine(vmDir, VmDisk.TopFor(rec)),
                    DiskFormat = VmDisk.FormatFor(rec.Backend),
                    MemoryFile = memoryFile,
                    MemoryShared = shared,
                    Incoming = restoring,
                    // Firecracker loads the snapshot's files at launch; QEMU gets its state streamed in RestoreAsync.
                    StateFile = !restoring ? null : persisted ? Path.Combine(vmDir, VmLifecycle.PersistDir, "state") : Path.Combine(paths.SnapshotDir(rec.RestoreFrom!), "state"),
                    Devices = devices,
                    Tap = Network.VmNetworkPlan.TapName,
                    Mac = Network.VmNetworkPlan.GuestMac,
                    Netns = rec.Network.Netns,
                    ConsoleLog = console,
                    ControlSocket = Path.Combine(vmDir, "qmp.sock"),
                    Accel = accel,
                    Settings = _options.VmmSettings,
                    TapFd = tap is null ? null : (int)tap.DangerousGetHandle(),
                    Confinement = confinement,
                }, ct).ConfigureAwait(false);
                rec = rec with { Vmm = ProcessProbe.Ref(vmm.Pid), Status = VmStatus.Starting };
                store.Save(rec);
                Log($"VMM pid {vmm.Pid} up in {sw.ElapsedMilliseconds} ms ({accel.Name})");
            }
            catch (Exception ex)
            {
                Log($"boot failed: {ex}");
                if (ramCopy is not null)
                    await Task.WhenAny(ramCopy).ConfigureAwait(false); // no cp left writing after the teardown
                await StopNetworkServicesAsync().ConfigureAwait(false);
                if (forwarder is not null)
                    await forwarder.DisposeAsync().ConfigureAwait(false);
                await FailAsync(rec, ex, ct).ConfigureAwait(false);
                return 1;
            }
        }

        // SIGTERM (`rm -f`, which holds the VM lock meanwhile): kill the VMM, tear the network
        // down from here (this process's mount namespace is where the netns is mounted) and exit.
        var terminating = 0;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            Interlocked.Exchange(ref terminating, 1);
            ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
        });

        // SIGHUP (`vmsan network` after it changed the state file and nftables): the DNS filter and
        // the proxy take the stored policy at once, without a restart.
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            _ = Task.Run(ReloadPolicyAsync, CancellationToken.None);
            // `vmsan timeout` changed the expiry: look again now.
            Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        });

        if (restoring)
        {
            if (await RestoreAsync(rec, sw, ct).ConfigureAwait(false))
            {
                using (store.LockVm(_id))
                {
                    var now = store.Load(_id);
                    if (now.Status == VmStatus.Starting)
                    {
                        store.Save(now with { Status = VmStatus.Running, StartedAt = DateTimeOffset.UtcNow, BootMs = (int)sw.ElapsedMilliseconds, PersistedAt = null });
                        Log($"restored and re-keyed after {sw.ElapsedMilliseconds} ms");
                        if (now.PersistedAt is not null)
                            Directory.Delete(Path.Combine(vmDir, VmLifecycle.PersistDir), true);
                    }
                }
            }
        }
        else if (await WaitForAgentAsync(rec, vmm, ct).ConfigureAwait(false) && ApplyDeferredCpuQuota(rec))
        {
            using (store.LockVm(_id))
            {
                var now = store.Load(_id);
                if (now.Status == VmStatus.Starting)
                {
                    store.Save(now with { Status = VmStatus.Running, StartedAt = DateTimeOffset.UtcNow, BootMs = (int)sw.ElapsedMilliseconds });
                    Log($"agent ready after {sw.ElapsedMilliseconds} ms");
                }
            }
        }

        _ = Task.Run(() => EnforceTimeoutAsync(vmm.Exited), CancellationToken.None);
        _ = Task.Run(() => KeepGuestClockAsync(vmm.Exited), CancellationToken.None);
        var exitCode = await vmm.Exited.ConfigureAwait(false);
        Log($"VMM exited with code {exitCode}");
        await StopNetworkServicesAsync().ConfigureAwait(false);
        var oomKilled = rec.Confinement.Cgroups is { } cg && VmCgroup.OomKills(cg) > 0;
        await VmmConfiner.RemoveCgroupAsync(rec.Confinement.Cgroups).ConfigureAwait(false);
        TryDelete(paths.MemoryFile(_id));
        if (forwarder is not null)
            await forwarder.DisposeAsync().ConfigureAwait(false);
        if (Volatile.Read(ref terminating) == 1)
        {
            await _network.TeardownAsync(_id, CancellationToken.None).ConfigureAwait(false);
            Log("terminated: network removed");
            return 0;
        }
        using (var vmLock = store.TryLockVm(_id))
        {
            var now = vmLock is null ? null : store.TryLoad(_id);
            if (now is null)
                return 0; // removed under us
            if (now.Status == VmStatus.Paused && now.PersistedAt is not null)
            {
                await _transitions.FinishPersistedLockedAsync(now, ct).ConfigureAwait(false);
                Log("persisted: VMM gone, network removed, the VM stays paused");
                return 0;
            }
            var reason = now.Status switch
            {
                VmStatus.Stopping when _timedOut && now.TimedOutAt is { } at => $"timed out at {at:O}",
                VmStatus.Stopping => "stopped",
                _ when oomKilled => $"the VMM was killed by the out-of-memory killer at its cgroup's memory limit ({rec.Confinement.Cgroups!.MemoryMaxBytes / (1024 * 1024)} MiB)",
                VmStatus.Running or VmStatus.Paused => exitCode == 0 ? "the guest powered off" : $"the VMM exited unexpectedly (code {exitCode})",
                _ => now.StopReason ?? $"the VM failed to boot (VMM exit code {exitCode})",
            };
            if (now.Status == VmStatus.Starting)
                now = now with { Error = now.Error ?? new VmError(ErrorCode.VmBootFailed.ToWire(), reason + "; " + ConsoleTail()) };
            await _transitions.FinishStoppedLockedAsync(now, reason, ct).ConfigureAwait(false);
        }
        return 0;
    }

    private VmNetworkServices? _services;
    private volatile bool _timedOut;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// The VM's timeout: waits until <see cref="VmRecord.ExpiresAt"/> (re-read when SIGHUP says it changed, and at
    /// least every minute), then stops, pauses or removes the VM the way the CLI verbs do. The expiry is absolute
    /// and stored, so a supervisor started later (stop/start) keeps counting from create.
    /// </summary>
    private async Task EnforceTimeoutAsync(Task vmmExited)
    {
        try
        {
            while (!vmmExited.IsCompleted)
            {
                var wake = Volatile.Read(ref _wake).Task;
                var rec = _store.TryLoad(_id);
                if (rec is null)
                    return;
                var wait = TimeSpan.FromMinutes(1);
                if (rec.ExpiresAt is { } at && rec.Status is VmStatus.Running or VmStatus.Paused)
                {
                    var left = at - DateTimeOffset.UtcNow;
                    if (left <= TimeSpan.Zero)
                    {
                        await FireTimeoutAsync().ConfigureAwait(false);
                        continue;
                    }
                    if (left < wait)
                        wait = left;
                }
                await Task.WhenAny(Task.Delay(wait), wake, vmmExited).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            Log($"timeout: {ex.Message}");
        }
    }

    /// <summary>How often the supervisor re-measures the guest's clock when nothing else happens.</summary>
    internal static readonly TimeSpan GuestClockInterval = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Keeps the running guest's wall clock on the host's with no client calling (a long job started by one exec, a
    /// VM nobody touches): every <see cref="GuestClockInterval"/>, and within a second of the host's own clock being
    /// set (<see cref="HostClockWatch"/>), which would otherwise leave every guest off by the step until the next
    /// command. A paused or stopping VM is skipped; a failed sync is tried again next time.
    /// </summary>
    private async Task KeepGuestClockAsync(Task vmmExited)
    {
        var watch = HostClockWatch.ForHost();
        var last = Stopwatch.StartNew();
        while (!vmmExited.IsCompleted)
        {
            await Task.WhenAny(Task.Delay(TimeSpan.FromSeconds(1)), vmmExited).ConfigureAwait(false);
            var step = watch.Poll();
            if (step is null && last.Elapsed < GuestClockInterval)
                continue;
            last.Restart();
            try
            {
                var rec = _store.TryLoad(_id);
                if (rec is null || rec.Status != VmStatus.Running || vmmExited.IsCompleted)
                    continue;
                using var agent = Lifecycle.VmAgent.For(rec, _store.LoadSecrets(_id).Token);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var offset = await agent.SyncClockAsync(cts.Token).ConfigureAwait(false);
                if (step is { } s)
                    Log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"the host's clock was set ({s.TotalMilliseconds:+0;-0} ms): guest clock was {offset?.TotalMilliseconds:+0.0;-0.0} ms off, synced"));
            }
            catch (Exception ex)
            {
                Log($"guest clock sync: {ex.Message}");
            }
        }
    }

    private async Task FireTimeoutAsync()
    {
        string action;
        using (_store.LockVm(_id))
        {
            var rec = _store.Load(_id);
            if (rec.ExpiresAt is not { } at || at > DateTimeOffset.UtcNow || rec.Status is not (VmStatus.Running or VmStatus.Paused))
                return; // changed under us
            action = rec.OnTimeout ?? TimeoutAction.Stop;
            // Cleared before acting, so it fires once; TimedOutAt says it did (and why a stop happened).
            _store.Save(rec with { ExpiresAt = null, TimedOutAt = DateTimeOffset.UtcNow });
        }
        Log($"timeout: {action}");
        switch (action)
        {
            case TimeoutAction.Pause:
                await _transitions.PauseAsync(_id).ConfigureAwait(false);
                break;
            case TimeoutAction.Remove:
                // Removing signals this supervisor and waits for it to end: it runs in a process of its own, the
                // supervisor host's remove verb (this program again; no vmsan CLI needed).
                await VmsanSupervisorHost.StartDetachedAsync(_options, VmsanSupervisorHost.RemoveVerb, _id, "/dev/null", CancellationToken.None).ConfigureAwait(false);
                break;
            default:
                _timedOut = true;
                await _transitions.StopAsync(_id).ConfigureAwait(false);
                break;
        }
    }
    private System.Net.IPEndPoint? _upstream;

    /// <summary>The policy stored in the VM's state.</summary>
    private static NetworkPolicy PolicyOf(VmRecord rec) => Network.Policy.NetworkPolicyState.PolicyOf(rec.Network);

    private async Task<VmNetworkServices> StartNetworkServicesAsync(VmRecord rec, NetworkPolicy policy, CancellationToken ct)
    {
        var manager = _network as VmNetworkManager
            ?? throw new VmsanException(ErrorCode.Internal, "The DNS filter needs the nftables network manager.");
        // This process runs in the namespace vmsan runs in: its resolver (loopback included) is the upstream.
        _upstream = HostResolver.FirstUpstream() is { } ns ? new System.Net.IPEndPoint(ns, 53) : null;
        if (_upstream is null)
            Log("no nameserver in /etc/resolv.conf: allowed names will get SERVFAIL");
        var hostAddresses = await manager.HostAddressesAsync().ConfigureAwait(false);
        return await VmNetworkServices.StartAsync(rec.Network.Netns, policy, _upstream, hostAddresses,
            new NftPinSink(manager, _id, rec.Network.Netns), Path.Combine(_options.Paths.VmDir(_id), NetworkLog.FileName), ct).ConfigureAwait(false);
    }

    private async Task ReloadPolicyAsync()
    {
        try
        {
            if (_services is not { } services || _store.TryLoad(_id) is not { } rec)
                return;
            var policy = PolicyOf(rec);
            await services.ApplyAsync(policy).ConfigureAwait(false);
            Log($"policy reloaded: {policy}");
        }
        catch (Exception ex)
        {
            Log($"policy reload failed: {ex.Message}");
        }
    }

    private async Task StopNetworkServicesAsync()
    {
        if (Interlocked.Exchange(ref _services, null) is { } s)
            await s.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// A snapshot clone: load the device state, continue the vCPUs, then give the guest its own identity over
    /// the agent with the snapshot's token (which only the host holds): new token, hostname, entropy, clock.
    /// </summary>
    private async Task<bool> RestoreAsync(VmRecord rec, Stopwatch sw, CancellationToken ct)
    {
        var persisted = rec.PersistedAt is not null;
        try
        {
            var stateFile = persisted ? Path.Combine(_options.Paths.VmDir(_id), VmLifecycle.PersistDir, "state") : Path.Combine(_options.Paths.SnapshotDir(rec.RestoreFrom!), "state");
            var backend = _options.BackendFor(rec.Backend);
            await using (var control = await backend.ConnectAsync(Path.Combine(_options.Paths.VmDir(_id), "qmp.sock"), ct).ConfigureAwait(false))
            {
                // Firecracker loaded the snapshot's files at launch (snapshot/load) and waits paused; QEMU takes the
                // device state as a migration stream now.
                if (backend.Name != Vmm.Firecracker.FirecrackerBackend.BackendName)
                {
                    var netns = $"/proc/{rec.Vmm!.Pid}/ns/net";
                    await control.LoadStateAsync($"tcp:127.0.0.1:{StateChannel.IncomingPort}",
                        c => StateChannel.SendFileAsync(netns, StateChannel.IncomingPort, stateFile, c), ct).ConfigureAwait(false);
                }
                Log($"device state loaded after {sw.ElapsedMilliseconds} ms");
                await control.ResumeAsync(ct).ConfigureAwait(false);
            }
            var newToken = _store.LoadSecrets(_id).Token;
            // A clone holds its snapshot's token until re-keyed; a persisted VM its own (re-keyed to itself: clock and entropy).
            var oldToken = persisted ? newToken : SnapshotStore.LoadToken(_options.Paths.SnapshotDir(rec.RestoreFrom!));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    using var agent = Lifecycle.VmAgent.For(rec, oldToken);
                    using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    cts.CancelAfter(TimeSpan.FromSeconds(3));
                    await agent.RekeyAsync(new Agent.Protocol.RekeyRequest(newToken, _id,
                        Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64)),
                        (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100, NewMachine: !persisted), cts.Token).ConfigureAwait(false);
                    return true;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    if (DateTime.UtcNow > deadline)
                        throw;
                    if (ex is Agent.Client.AgentException { Reason: Agent.Client.AgentErrorReason.Forbidden } && oldToken != newToken)
                    {
                        // An earlier attempt went through but its answer was lost (cut off by the 3 s limit under load):
                        // the guest holds the new token already. Re-keying again with it is the same call, harmless.
                        Log("the snapshot's token is refused: an earlier re-key went through unanswered; re-keying with the VM's own token");
                        oldToken = newToken;
                        continue;
                    }
                    Log($"rekey not answered yet ({ex.Message}); retrying");
                    await Task.Delay(20, ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            Log($"restore failed: {ex}");
            using (_store.LockVm(_id))
            {
                var now = _store.Load(_id);
                // A persisted VM whose restore failed is an ordinary failed VM from here on (its disk is intact).
                _store.Save(now with { PersistedAt = null, Error = new VmError(ErrorCode.VmBootFailed.ToWire(), persisted ? $"restoring the persisted VM failed: {ex.Message}" : $"restoring from snapshot {rec.RestoreFrom} failed: {ex.Message}") });
            }
            ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
            return false;
        }
    }

    private async Task CopyRamAsync(string source, string memoryFile, CancellationToken ct)
    {
        await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--sparse=always", source, memoryFile], ct: ct).ConfigureAwait(false);
        File.SetUnixFileMode(memoryFile, UnixFileMode.UserRead | UnixFileMode.UserWrite); // guest RAM: root's alone
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>True once the agent answers; false when the VMM died first or the boot timed out (the VMM is then killed).</summary>
    private async Task<bool> WaitForAgentAsync(VmRecord rec, VmmProcess vmm, CancellationToken ct)
    {
        using var agent = Lifecycle.VmAgent.For(rec, _store.LoadSecrets(_id).Token);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var pollCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        // Two ways to learn the agent is up: its console marker (fast path) and health polling
        // (fallback for agents that print nothing, e.g. a custom rootfs's own agent build).
        var marker = ConsoleWatcher.WaitForAsync(Path.Combine(_options.Paths.VmDir(_id), "console.log"), ConsoleWatcher.AgentReady, cts.Token);
        var health = agent.WaitUntilHealthyAsync(_options.BootTimeout, pollCts.Token);
        var first = await Task.WhenAny(health, marker, vmm.Exited).ConfigureAwait(false);
        if (first == marker && await marker.ConfigureAwait(false))
        {
            Log("console: agent ready marker seen");
            await pollCts.CancelAsync().ConfigureAwait(false);
            // A fresh client: the poller's pool may hold a connection attempt whose SYN went out
            // before the guest NIC was up; a new request would queue behind it until the next SYN
            // retransmit (a constant ~2.2 s boot, whatever the guest did).
            using var fresh = Lifecycle.VmAgent.For(rec, _store.LoadSecrets(_id).Token);
            health = fresh.WaitUntilHealthyAsync(TimeSpan.FromSeconds(30), cts.Token);
            first = await Task.WhenAny(health, vmm.Exited).ConfigureAwait(false);
        }
        if (first == health)
        {
            try
            {
                await health.ConfigureAwait(false);
                return true;
            }
            catch (Exception ex)
            {
                Log($"agent never answered: {ex.Message}; killing the VMM");
                using (_store.LockVm(_id))
                {
                    var now = _store.Load(_id);
                    _store.Save(now with { Error = new VmError(ErrorCode.VmBootFailed.ToWire(), $"the agent did not answer within {_options.BootTimeout.TotalSeconds:0} s; {ConsoleTail()}") });
                }
                ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
                return false;
            }
        }
        await cts.CancelAsync().ConfigureAwait(false);
        return false;
    }

    /// <summary>
    /// The boot ran without its cgroup's CPU quota (<see cref="VmmConfiner.Prepare"/>): in force from here, before the
    /// VM is handed out. Fails closed: a VM whose quota cannot be written is killed, never left running without it.
    /// </summary>
    private bool ApplyDeferredCpuQuota(VmRecord rec)
    {
        if (rec.Confinement.Cgroups is not { } cg || rec.Backend == Vmm.Firecracker.FirecrackerBackend.BackendName)
            return true;
        try
        {
            VmCgroup.ApplyCpuQuota(cg);
            return true;
        }
        catch (VmsanException ex)
        {
            Log($"{ex.Message}; killing the VMM");
            using (_store.LockVm(_id))
            {
                var now = _store.Load(_id);
                _store.Save(now with { Error = new VmError(ex.Code.ToWire(), ex.Message) });
            }
            ProcessProbe.Kill(rec.Vmm, LibcPublic.SIGKILL);
            return false;
        }
    }

    private string ConsoleTail()
    {
        try
        {
            var lines = File.ReadAllLines(Path.Combine(_options.Paths.VmDir(_id), "console.log"));
            return "console: " + string.Join(" | ", lines.Where(l => l.Trim().Length > 0).TakeLast(3));
        }
        catch (IOException)
        {
            return "no console output";
        }
    }

    private async Task FailAsync(VmRecord rec, Exception ex, CancellationToken ct)
    {
        var error = ex is VmsanException v ? new VmError(v.Code.ToWire(), v.Message) : new VmError(ErrorCode.Internal.ToWire(), ex.Message);
        await _transitions.FinishStoppedLockedAsync(rec with { Error = error }, "boot failed", ct).ConfigureAwait(false);
    }
}
