using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Core;
using Vmsan.Core.Errors;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Network;
using Vmsan.Network.Policy;
using Vmsan.Network.Ports;
using Vmsan.Vmm;

namespace Vmsan;

/// <summary>
/// What <see cref="VmsanClient"/> does, behind its public façade: VM state transitions (create, start, stop,
/// pause, snapshot, remove, reconcile), exec and file transfers through the VM's agent, images and runtimes. It is
/// also the <see cref="Supervision.IVmTransitions"/> a VM's supervisor records its VM's end through. The state,
/// network and options it works with are passed in, so the supervisor and the tests build theirs from the same parts.
/// </summary>
internal sealed partial class VmLifecycle : Supervision.IVmTransitions, IDisposable
{
    private readonly VmsanClientOptions _options;
    private readonly VmStore _store;
    private readonly IVmNetwork _network;
    private readonly Lifecycle.AgentConnections _agents = new();

    public VmLifecycle(VmsanClientOptions options, VmStore store, IVmNetwork network)
    {
        _options = options;
        _store = store;
        _network = network;
    }

    /// <summary>The production parts for <paramref name="options"/>: the state directory's store and the nftables network manager.</summary>
    public static VmLifecycle For(VmsanClientOptions options) =>
        new(options, new VmStore(options.Paths), new VmNetworkManager(options.Commands));

    public VmsanPaths Paths => _options.Paths;

    /// <summary>Closes the agent connections kept (VMs keep running).</summary>
    public void Dispose() => _agents.Dispose();

    internal VmStore Store => _store;

    internal IVmNetwork Network => _network;

    internal VmsanClientOptions Options => _options;

    private void Log(string message) => _options.Log?.Invoke(message);

    public async Task<VmInfo> CreateAsync(CreateOptions options, CancellationToken ct = default)
    {
        options.Check();
        RequireRoot();
        var backend = options.Vmm == "firecracker" ? _options.Firecracker : _options.Backend;
        if (options.Vmm == "firecracker")
            RequireFirecracker(backend);
        var accel = _options.AccelDetector.Detect(options.Accel);
        if (options.Vmm == "firecracker")
            RequireFirecrackerOptions(options, accel);
        else if (_options.Backend.CheckAvailable() is { } missing)
            throw new VmsanException(ErrorCode.QemuNotFound, missing, "Run ./install.sh, or `apt-get install qemu-system-x86 qemu-utils`.");
        var kernel = options.Kernel ?? _options.Paths.DefaultKernel;
        var initrd = _options.Paths.DefaultInitrd;
        if (!File.Exists(kernel) || !File.Exists(initrd))
            throw new VmsanException(ErrorCode.AssetsMissing, $"The guest kernel is not installed ({kernel}, {initrd}).",
                "Run ./install.sh to build the kernel, initramfs and runtimes.");
        VmImage? image = null;
        string baseImage;
        if (options.FromImage is not null)
        {
            var progress = PullProgressAdapter.For(options.ImageProgress);
            var rec = options.ResolvedImage ?? await ResolveImageAsync(options.FromImage, options.ImagePull.ToPullOptions(), progress, ct).ConfigureAwait(false);
            baseImage = await ImageCache.EnsureRootfsAsync(rec, progress, ct).ConfigureAwait(false);
            image = ToVmImage(rec);
        }
        else
            baseImage = options.Rootfs is not null ? Path.GetFullPath(options.Rootfs) : RuntimeImage(options.Runtime);
        if (!File.Exists(baseImage))
        {
            // A name with no recipe says so (and lists the known ones) rather than suggesting a build that cannot run.
            new Runtimes.RuntimeCatalog(_options.Paths).Load(options.Runtime);
            throw new VmsanException(ErrorCode.RuntimeNotFound, $"Runtime '{options.Runtime}' is not built ({baseImage}).",
                $"Run `vmsan runtimes build {options.Runtime}`.");
        }
        var baseMib = (int)Math.Ceiling(new FileInfo(baseImage).Length / (1024.0 * 1024.0));
        // The disk is an overlay of the base image: it cannot be smaller than it. Say so rather
        // than silently handing out a different size.
        if (options.DiskMib is { } asked && asked < baseMib)
            throw VmsanException.Invalid($"--disk {asked} MiB is smaller than the root image ({baseMib} MiB, {baseImage}).",
                $"Pass --disk {baseMib} or more, or leave --disk out.");
        var diskMib = options.DiskMib ?? Math.Max(CreateOptions.DefaultDiskMib, baseMib);
        if (Diagnostics.DiskSpace.CreateWarning(diskMib, FreeBytes(), _options.Paths.Home) is { } warning)
            _options.Warn?.Invoke(warning);

        var boot = await ChooseBootAsync(options, backend, accel, kernel, initrd, baseImage, diskMib, ct).ConfigureAwait(false);
        using var buildLock = boot.BuildLock;
        var warm = boot.Snapshot;
        Log(warm is not null ? $"warm: resuming boot snapshot {boot.BootId}" : $"cold: {boot.Reason}");

        string id;
        int slot;
        using (_store.LockGlobal())
        {
            // Under the global lock: two creates asking for one port cannot both pass.
            CheckPortsFree(options.Ports, null);
            (id, slot) = _store.Reserve();
        }
        Log($"reserved {id} (network slot {slot}), accel {accel.Name}: {accel.Reason}");

        try
        {
            var plan = VmNetworkPlan.For(id, slot);
            var vmDir = _options.Paths.VmDir(id);
            var sw = Stopwatch.StartNew();
            if (warm is not null)
            {
                await PrepareWarmDiskAsync(warm, vmDir, diskMib, ct).ConfigureAwait(false);
                Log($"disk over boot snapshot {warm.Id} in {sw.ElapsedMilliseconds} ms");
            }
            else if (backend.Name == Vmm.Firecracker.FirecrackerBackend.BackendName)
            {
                // Firecracker takes raw disks only: a sparse (reflinked where the filesystem can) copy
                // of the base, grown to the VM's size; the guest grows its filesystem at boot.
                var raw = Path.Combine(vmDir, VmDisk.Raw);
                await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "cp", ["--sparse=always", "--reflink=auto", baseImage, raw], ct: ct).ConfigureAwait(false);
                await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "truncate", ["-s", $"{diskMib}M", raw], ct: ct).ConfigureAwait(false);
                File.SetUnixFileMode(raw, VmStore.PrivateFile);
                Log($"raw disk {raw} from {baseImage} in {sw.ElapsedMilliseconds} ms");
            }
            else
            {
                var overlay = Path.Combine(vmDir, VmDisk.Qcow2);
                await _options.Commands.RunCheckedAsync(ErrorCode.Internal, "qemu-img",
                    ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", baseImage, overlay, $"{diskMib}M"], ct: ct).ConfigureAwait(false);
                File.SetUnixFileMode(overlay, VmStore.PrivateFile);
                Log($"overlay {overlay} over {baseImage} in {sw.ElapsedMilliseconds} ms");
            }
            _store.SaveSecrets(id, new VmSecrets(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))));
            var createdAt = DateTimeOffset.UtcNow;
            _store.Save(new VmRecord
            {
                Id = id,
                Status = VmStatus.Creating,
                CreatedAt = createdAt,
                ExpiresAt = createdAt + options.Timeout,
                OnTimeout = options.Timeout is null ? null : options.OnTimeout,
                Vcpus = options.Vcpus,
                MemoryMib = options.MemoryMib,
                DiskMib = diskMib,
                Runtime = image is not null ? "image" : options.Rootfs is not null ? "custom" : options.Runtime,
                Image = image,
                Kernel = Path.GetFullPath(kernel),
                Initrd = initrd,
                BaseImage = baseImage,
                Accel = accel.Name,
                Backend = backend.Name,
                Boot = warm is not null ? "warm" : "cold",
                RestoreFrom = warm?.Id,
                Devices = warm?.Devices,
                Confinement = new VmConfinement
                {
                    DropPrivileges = options.DropPrivileges,
                    Seccomp = options.Seccomp,
                    Chroot = options.Chroot,
                    Cgroup = options.Cgroup,
                },
                Network = new VmNetwork
                {
                    Slot = slot,
                    Netns = plan.NetnsName,
                    HostVeth = plan.HostLink,
                    HostIp = plan.HostAddress.ToString(),
                    NsIp = plan.NamespaceAddress.ToString(),
                    GuestIp = VmNetworkPlan.GuestAddress.ToString(),
                    GatewayIp = VmNetworkPlan.GatewayAddress.ToString(),
                    Dns = _network.GuestResolver()?.ToString(),
                    PublishedPorts = options.PublishedPorts.Count > 0 ? [.. options.Ports] : null,
                }.WithPolicy(options.NetworkPolicy.Inner),
            });
        }
        catch
        {
            _store.Delete(id);
            throw;
        }
        if (warm is not null)
        {
            try
            {
                return await LaunchSupervisorAndWaitAsync(id, ct).ConfigureAwait(false);
            }
            catch (VmsanException ex) when (ex.Code is ErrorCode.VmBootFailed or ErrorCode.Timeout && !ct.IsCancellationRequested)
            {
                // A boot snapshot that does not restore (removed under us, or a guest that did not re-key) must never
                // cost the caller the VM: this one goes, and a real boot takes its place.
                Log($"warm restore of {id} from {warm.Id} failed ({ex.Message}); booting cold instead");
                await RemoveAsync(id, force: true, ct).ConfigureAwait(false);
                return await CreateAsync(options with { Cold = true }, ct).ConfigureAwait(false);
            }
        }
        var vm = await LaunchSupervisorAndWaitAsync(id, ct).ConfigureAwait(false);
        if (boot.BuildLock is not null)
            await BuildBootSnapshotAsync(id, boot, ct).ConfigureAwait(false);
        return vm;
    }

    /// <summary>Bytes free (for an unprivileged user: root's reserve is no help to a VMM) on the filesystem of VMSAN_HOME.</summary>
    internal long FreeBytes()
    {
        var dir = _options.Paths.Home;
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent)
            dir = parent;
        return new DriveInfo(dir).AvailableFreeSpace;
    }

    /// <summary>Every VM's disk: its virtual size and what its overlay holds now.</summary>
    internal List<Diagnostics.VmDiskUsage> Disks()
    {
        var disks = new List<Diagnostics.VmDiskUsage>();
        foreach (var id in _store.ListIds())
        {
            if (_store.TryLoad(id) is not { } rec)
                continue;
            var overlay = new FileInfo(Path.Combine(_options.Paths.VmDir(id), VmDisk.TopFor(rec)));
            disks.Add(new Diagnostics.VmDiskUsage(id, (long)rec.DiskMib * 1024 * 1024, overlay.Exists ? overlay.Length : 0));
        }
        return disks;
    }

    /// <summary>
    /// PORT_IN_USE when another VM (running or stopped: a stopped VM keeps its ports) publishes one of
    /// <paramref name="ports"/>, or something in this namespace holds it.
    /// </summary>
    private void CheckPortsFree(IReadOnlyList<PublishedPort> ports, string? self)
    {
        if (ports.Count == 0)
            return;
        foreach (var otherId in _store.ListIds())
        {
            if (otherId == self || _store.TryLoad(otherId) is not { } other)
                continue;
            foreach (var mine in ports)
                foreach (var theirs in other.Network.PublishedPorts ?? [])
                    if (PortSpec.Collide(mine, theirs))
                        throw new VmsanException(ErrorCode.PortInUse, $"--publish-port {mine}: host port {mine.HostPort}/{mine.Protocol} is published by {otherId} ({theirs}).",
                            $"Pick another host port, or remove {otherId}.");
        }
        foreach (var p in ports)
            PortSpec.CheckFree(p);
    }

    public async Task<VmInfo> StartAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            if (rec.Status is VmStatus.Running or VmStatus.Paused or VmStatus.Starting or VmStatus.Creating)
                return VmInfo.From(rec);
            _store.Save(rec with { Status = VmStatus.Starting, Error = null, StopReason = null });
        }
        return await LaunchSupervisorAndWaitAsync(id, ct).ConfigureAwait(false);
    }

    private async Task<VmInfo> LaunchSupervisorAndWaitAsync(string id, CancellationToken ct)
    {
        var launchedAt = DateTimeOffset.UtcNow;
        var log = Path.Combine(_options.Paths.VmDir(id), "supervisor.log");
        await VmsanSupervisorHost.StartDetachedAsync(_options, VmsanSupervisorHost.Verb, id, log, ct).ConfigureAwait(false);

        var deadline = DateTime.UtcNow + _options.BootTimeout + TimeSpan.FromSeconds(10);
        var sawSupervisor = false;
        while (true)
        {
            var rec = _store.Load(id);
            switch (rec.Status)
            {
                case VmStatus.Running:
                    return VmInfo.From(rec);
                case VmStatus.Error:
                    throw new VmsanException(Enum.TryParse<ErrorCode>(rec.Error?.Code?.Replace("_", "", StringComparison.Ordinal), true, out var c) ? c : ErrorCode.VmBootFailed,
                        $"VM {id} failed to boot: {rec.Error?.Message}", $"See `vmsan logs {id}` for the guest console; remove it with `vmsan rm {id}`.");
                // It booted, and its timeout fired before this loop looked (a short timeout on a slow host): created, not failed.
                case VmStatus.Stopped or VmStatus.Paused when rec.TimedOutAt >= launchedAt && rec.StartedAt >= launchedAt:
                    return VmInfo.From(rec);
                case VmStatus.Stopped:
                    throw new VmsanException(ErrorCode.VmBootFailed, $"VM {id} stopped while booting: {rec.StopReason}",
                        $"See `vmsan logs {id}`; remove it with `vmsan rm {id}`.");
            }
            if (rec.Supervisor is not null)
                sawSupervisor = true;
            // A dead supervisor never finishes the boot, even with its QEMU still running: reconcile (kill the orphan).
            if (sawSupervisor && !ProcessProbe.IsAlive(rec.Supervisor))
            {
                var after = await ReconcileAsync(id, ct).ConfigureAwait(false);
                if (after?.Status == VmStatus.Running)
                    return VmInfo.From(after);
                throw new VmsanException(ErrorCode.VmBootFailed, $"The supervisor of {id} died while booting{(after?.StopReason is { } r ? $": {r}" : "")}.",
                    $"See {log} and `vmsan logs {id}`.");
            }
            if (DateTime.UtcNow > deadline)
                throw new VmsanException(ErrorCode.Timeout, $"VM {id} did not become ready in time.", $"See `vmsan logs {id}`.");
            await Task.Delay(15, ct).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<VmInfo>> ListAsync(CancellationToken ct = default)
    {
        var list = new List<VmInfo>();
        foreach (var id in _store.ListIds())
        {
            var rec = await ReconcileAsync(id, ct).ConfigureAwait(false);
            if (rec is not null)
                list.Add(VmInfo.From(rec));
        }
        return list.OrderBy(v => v.CreatedAt).ToList();
    }

    public async Task<VmInfo> GetAsync(string id, CancellationToken ct = default) =>
        VmInfo.From(await ReconcileAsync(RequireId(id), ct).ConfigureAwait(false) ?? throw VmsanException.NotFound(id));

    public string ConsoleLogPath(string id)
    {
        _store.Load(RequireId(id));
        return Path.Combine(_options.Paths.VmDir(id), "console.log");
    }

    public string NetworkLogPath(string id)
    {
        _store.Load(RequireId(id));
        return Path.Combine(_options.Paths.VmDir(id), Vmsan.Network.Logging.NetworkLog.FileName);
    }

    /// <summary>The VM's agent client (one per VM, reused), connected through the VM's network namespace.</summary>
    internal async Task<AgentClient> ConnectAgentAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        var rec = await ReconcileAsync(RequireId(id), ct).ConfigureAwait(false) ?? throw VmsanException.NotFound(id);
        if (rec.Status == VmStatus.Paused)
            throw new VmsanException(ErrorCode.VmPaused, $"VM {id} is paused.", $"Resume it with `vmsan resume {id}`.");
        if (rec.Status != VmStatus.Running)
            throw new VmsanException(ErrorCode.VmNotRunning, $"VM {id} is {rec.Status.ToString().ToLowerInvariant()}, not running.",
                $"Start it with `vmsan start {id}`.");
        return _agents.Get(rec, _store.LoadSecrets(id).Token);
    }

    public static void ValidateId(string id) => RequireId(id);

    internal static string RequireId(string id)
    {
        if (!VmStore.IsValidId(id))
            throw new VmsanException(ErrorCode.VmNotFound, $"'{id}' is not a VM id (they look like vm-1a2b3c4d).", "Run `vmsan list` to see the VMs that exist.");
        return id;
    }

    /// <summary><c>--vmm firecracker</c>: needs the firecracker and jailer binaries; never falls back to QEMU silently.</summary>
    private static void RequireFirecracker(Vmm.IVmmBackend firecracker)
    {
        if (firecracker.CheckAvailable() is { } missing)
            throw new VmsanException(ErrorCode.DependencyMissing, $"--vmm firecracker: {missing}.",
                "Run ./install.sh --vmm firecracker where GitHub release downloads are reachable, or put firecracker and jailer (same version) on PATH; or use --vmm qemu.");
    }

    /// <summary>
    /// What Firecracker cannot do, refused before anything is created: it has no TCG (KVM only), and
    /// its jailer always drops privileges and chroots, so those two switches would change nothing.
    /// </summary>
    private static void RequireFirecrackerOptions(CreateOptions options, Vmm.AccelChoice accel)
    {
        if (accel.Kind != Vmm.AccelKind.Kvm)
            throw new VmsanException(ErrorCode.DependencyMissing, $"Firecracker needs a working KVM; this host gives {accel.Name} ({accel.Reason}).",
                "Use --vmm qemu, which runs under TCG too.");
        if (!options.DropPrivileges)
            throw VmsanException.Invalid("--no-drop-privileges is not offered with --vmm firecracker: its jailer always runs the VMM as the VM's own unprivileged uid.",
                "Drop --no-drop-privileges, or use --vmm qemu.");
        if (!options.Chroot)
            throw VmsanException.Invalid("--no-chroot is not offered with --vmm firecracker: its jailer always chroots the VMM.",
                "Drop --no-chroot, or use --vmm qemu.");
    }

    internal static void RequireRoot()
    {
        if (Core.Interop.LibcPublic.IsRoot())
            return;
        throw new VmsanException(ErrorCode.PermissionDenied, "vmsan needs root to create network namespaces, TAP devices and firewall rules.",
            "Run it as root (sudo vmsan ...).");
    }
}
