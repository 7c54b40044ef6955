using Vmsan.Core;
using Vmsan.Errors;
using Vmsan.Core.State;
using Vmsan.Images;
using Vmsan.Images.Cache;
using Vmsan.Network.Policy;
using Vmsan.Runtimes;

namespace Vmsan;

/// <summary>
/// The vmsan library: create, start, stop, remove and exec into microVMs. The CLI is a thin layer
/// over this class; C# programs can call it directly (see samples/Vmsan.Sample). Every failure is a
/// <see cref="VmsanException"/> with the same stable code the CLI prints. One agent connection per VM is kept
/// and reused across calls until the client is disposed. Creating or starting VMs needs a supervisor process:
/// see <see cref="VmsanSupervisorHost"/>.
/// </summary>
/// <remarks>
/// A thin façade: every call is forwarded to the internal lifecycle service, which holds the state store, the
/// network manager and the options this client was made with.
/// </remarks>
public sealed class VmsanClient : IDisposable
{
    private readonly VmLifecycle _vms;

    /// <summary>Creates a client; <paramref name="options"/> null: state in <c>VMSAN_HOME</c> (default ~/.vmsan), assets in <c>VMSAN_ASSETS</c> (default /var/lib/vmsan).</summary>
    /// <param name="options">Where state and assets live, timeouts, logging.</param>
    public VmsanClient(VmsanClientOptions? options = null) => _vms = VmLifecycle.For(options ?? new VmsanClientOptions());

    /// <summary>The lifecycle service behind this façade (the CLI and the tests reach the internals through it).</summary>
    internal VmLifecycle Lifecycle => _vms;

    /// <summary>Where this client keeps VM state and finds the installed assets (the CLI and the tests use it).</summary>
    internal VmsanPaths Paths => _vms.Paths;

    /// <summary>Closes the agent connections this client keeps (VMs keep running).</summary>
    public void Dispose() => _vms.Dispose();

    // VmLifecycle.cs

    /// <summary>Creates a VM and boots it; returns once its agent answers (status <c>running</c>).</summary>
    /// <param name="options">What to boot; every value is checked before anything is created.</param>
    /// <param name="ct">Cancels waiting (the VM's supervisor, already detached, may still finish booting it).</param>
    /// <exception cref="VmsanException">INVALID_ARGUMENT, PERMISSION_DENIED, ASSETS_MISSING, RUNTIME_NOT_FOUND, VM_BOOT_FAILED, TIMEOUT, ...</exception>
    public Task<VmInfo> CreateAsync(CreateOptions options, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.CreateAsync(options, ct));

    /// <summary>Boots a stopped VM again, with its disk as it was.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="ct">Cancels waiting.</param>
    /// <exception cref="VmsanException">VM_NOT_FOUND, VM_BOOT_FAILED, TIMEOUT, ...</exception>
    public Task<VmInfo> StartAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.StartAsync(id, ct));

    /// <summary>All VMs, each reconciled with reality (a VM whose VMM died is never reported running).</summary>
    /// <param name="ct">Cancels the call.</param>
    public Task<IReadOnlyList<VmInfo>> ListAsync(CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.ListAsync(ct));

    /// <summary>One VM, reconciled with reality.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="VmsanException">VM_NOT_FOUND.</exception>
    public Task<VmInfo> GetAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.GetAsync(id, ct));

    /// <summary>The path of the guest's serial console log.</summary>
    /// <param name="id">The VM id.</param>
    public string ConsoleLogPath(string id) =>
        PublicErrors.Run(() => _vms.ConsoleLogPath(id));

    /// <summary>
    /// The VM's network log (JSON lines, as <c>vmsan network logs --json</c> prints them): DNS answers
    /// and refusals, connections the proxy refused, and nftables refusals.
    /// </summary>
    /// <param name="id">The VM id.</param>
    public string NetworkLogPath(string id) =>
        PublicErrors.Run(() => _vms.NetworkLogPath(id));

    /// <summary>Throws VM_NOT_FOUND for anything that is not shaped like a VM id (before any work starts).</summary>
    /// <param name="id">What the caller says is a VM id.</param>
    public static void ValidateId(string id) =>
        PublicErrors.Run(() => VmLifecycle.ValidateId(id));

    // VmLifecycle.Exec.cs

    /// <summary>
    /// Runs a command in the VM, streaming its stdout and stderr (null discards) as it runs; returns how it ended. It
    /// never hangs: a VM removed or stopped meanwhile ends it at once with VM_NOT_FOUND / VM_NOT_RUNNING, an agent
    /// that stops answering with AGENT_UNREACHABLE (the exec stream's ping/pong).
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command.</param>
    /// <param name="stdout">Receives the command's stdout bytes.</param>
    /// <param name="stderr">Receives the command's stderr bytes.</param>
    /// <param name="ct">Cancels the call (the remote process group is then killed).</param>
    /// <exception cref="VmsanException">VM_NOT_FOUND, VM_NOT_RUNNING, VM_PAUSED, USER_NOT_FOUND, AGENT_UNREACHABLE, AGENT_ERROR.</exception>
    public Task<ExecResult> ExecAsync(string id, ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.ExecAsync(id, request, stdout, stderr, ct));

    /// <summary>
    /// Starts a command over a WebSocket: stdin, TTY, signals and resizes go through the returned stream. A named
    /// <see cref="ExecRequest.Session"/> that is running is attached instead. The stream watches the VM as
    /// <see cref="ExecAsync"/> does.
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command.</param>
    /// <param name="ct">Cancels opening the stream.</param>
    /// <exception cref="VmsanException">VM errors, AGENT_UNREACHABLE, AGENT_ERROR.</exception>
    public Task<ExecStream> OpenExecAsync(string id, ExecRequest request, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.OpenExecAsync(id, request, ct));

    /// <summary>Attaches to an exec (by exec id or session name): its buffered output, then live output until it exits.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="execIdOrSession">An exec id (<c>e-…</c>) or a session name.</param>
    /// <param name="ct">Cancels attaching.</param>
    /// <exception cref="VmsanException">VM errors, AGENT_ERROR (no such exec).</exception>
    public Task<ExecStream> AttachExecAsync(string id, string execIdOrSession, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.AttachExecAsync(id, execIdOrSession, ct));

    /// <summary>Starts a detached exec; returns at once with its id.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="request">The command (runs detached whatever <see cref="ExecRequest.Detach"/> says).</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="VmsanException">VM errors, AGENT_ERROR.</exception>
    public Task<ExecInfo> StartDetachedAsync(string id, ExecRequest request, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.StartDetachedAsync(id, request, ct));

    /// <summary>Lists the VM's execs and sessions.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="VmsanException">VM errors, AGENT_ERROR.</exception>
    public Task<IReadOnlyList<ExecInfo>> ListExecsAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.ListExecsAsync(id, ct));

    /// <summary>Sends a signal to an exec's process group.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="execIdOrSession">An exec id or a session name.</param>
    /// <param name="signal">The signal number (15: SIGTERM).</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="VmsanException">VM errors, AGENT_ERROR (no such exec).</exception>
    public Task<ExecInfo> SignalExecAsync(string id, string execIdOrSession, int signal, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.SignalExecAsync(id, execIdOrSession, signal, ct));

    // VmLifecycle.Files.cs

    /// <summary>
    /// Uploads local files and directories (recursively; symlinks stay symlinks; modes and mtimes kept) into
    /// <paramref name="remoteDirectory"/>, like <c>docker cp</c>: <c>./dir</c> lands as <c>remoteDirectory/dir</c>,
    /// <c>./dir/.</c> puts the directory's content there. Each file is written atomically in the guest.
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="localSources">Local files and directories (<c>DIR/.</c>: the directory's content).</param>
    /// <param name="remoteDirectory">The directory in the guest they land in.</param>
    /// <param name="user">Owner in the guest; null: <c>user</c> when the guest has it, else root.</param>
    /// <param name="ct">Cancels the transfer (nothing half-written is left: files are renamed into place when complete).</param>
    /// <param name="progress">Receives the bytes sent so far (the tar stream: content plus headers).</param>
    /// <exception cref="VmsanException">PATH_NOT_FOUND (a local source), TRANSFER_FAILED (refused or broken), VM errors.</exception>
    public Task<TransferSummary> UploadAsync(string id, IReadOnlyList<string> localSources, string remoteDirectory, string? user = null, IProgress<long>? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.UploadAsync(id, localSources, remoteDirectory, user, progress, ct));

    /// <summary>Uploads a tar stream (e.g. stdin) and extracts it under <paramref name="remoteDirectory"/>.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="tar">A tar stream (ustar, pax or GNU).</param>
    /// <param name="remoteDirectory">The directory in the guest it is extracted under.</param>
    /// <param name="user">Owner in the guest; null: the default user.</param>
    /// <param name="ct">Cancels the transfer.</param>
    /// <param name="progress">Receives the tar bytes moved so far.</param>
    /// <exception cref="VmsanException">TRANSFER_FAILED (refused, e.g. an unsafe entry, or broken), VM errors.</exception>
    public Task<TransferSummary> UploadTarAsync(string id, Stream tar, string remoteDirectory, string? user = null, IProgress<long>? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.UploadTarAsync(id, tar, remoteDirectory, user, progress, ct));

    /// <summary>
    /// Downloads a remote file or directory like <c>docker cp</c>: into <paramref name="localPath"/> when it is a directory,
    /// else as that name. Entries the guest sends that would land outside are refused.
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="remotePath">A file or directory in the guest.</param>
    /// <param name="localPath">Where it lands on this host.</param>
    /// <param name="user">Who reads it in the guest; null: the default user.</param>
    /// <param name="ct">Cancels the transfer.</param>
    /// <param name="progress">Receives the tar bytes moved so far.</param>
    /// <exception cref="VmsanException">PATH_NOT_FOUND, TRANSFER_FAILED, VM errors.</exception>
    public Task<TransferSummary> DownloadAsync(string id, string remotePath, string localPath, string? user = null, IProgress<long>? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.DownloadAsync(id, remotePath, localPath, user, progress, ct));

    /// <summary>Writes the tar stream of a remote file or directory to <paramref name="output"/>; returns its size in bytes.</summary>
    /// <param name="id">The VM id.</param>
    /// <param name="remotePath">A file or directory in the guest.</param>
    /// <param name="output">Receives the tar stream.</param>
    /// <param name="user">Who reads it in the guest; null: the default user.</param>
    /// <param name="ct">Cancels the transfer.</param>
    /// <param name="progress">Receives the tar bytes moved so far.</param>
    /// <exception cref="VmsanException">PATH_NOT_FOUND, TRANSFER_FAILED, VM errors.</exception>
    public Task<long> DownloadTarAsync(string id, string remotePath, Stream output, string? user = null, IProgress<long>? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.DownloadTarAsync(id, remotePath, output, user, progress, ct));

    // VmLifecycle.Network.cs

    /// <summary>The policy stored for (and, when running, in force in) <paramref name="id"/>, with refusal counters.</summary>
    public Task<NetworkStatus> GetNetworkAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.GetNetworkAsync(id, ct));

    /// <summary>
    /// Changes a VM's policy, live when it runs: <paramref name="change"/> computes the new policy
    /// from the one in force (and throws INVALID_ARGUMENT for bad input before anything changes);
    /// the whole table is swapped in one transaction (a failure leaves the old policy), established
    /// connections the new policy denies are cut, then the state file is updated and the supervisor
    /// told (SIGHUP) so the DNS filter and proxy follow.
    /// </summary>
    /// <param name="id">The VM id.</param>
    /// <param name="change">The new policy from the one in force (e.g. <c>old =&gt; old.Change(addDomains: ["example.com"])</c>).</param>
    /// <param name="ct">Cancels the call.</param>
    /// <exception cref="VmsanException">INVALID_ARGUMENT (from <paramref name="change"/>), VM_NOT_FOUND, NETWORK_SETUP_FAILED, PERMISSION_DENIED.</exception>
    public Task<NetworkStatus> ChangeNetworkPolicyAsync(string id, Func<EgressPolicy, EgressPolicy> change, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        return PublicErrors.Run(() => _vms.ChangeNetworkPolicyAsync(id, old => change(new EgressPolicy(old)).Inner, ct));
    }

    // VmLifecycle.Pause.cs

    /// <summary>
    /// Stops the VM's vCPUs (QMP <c>stop</c>); memory, devices and disk stay in the live VMM, so
    /// <see cref="ResumeAsync"/> continues exactly where it was. Pausing a paused VM is a no-op. With <paramref name="persist"/>, also writes its memory and device state to its directory
    /// (the disk is flushed by the migration's end) and ends the VMM: its RAM is freed, and
    /// <see cref="ResumeAsync"/> restores the same VM (id, token, disk, policy, ports, timeout) in a new VMM.
    /// </summary>
    public Task<VmInfo> PauseAsync(string id, bool persist = false, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.PauseAsync(id, persist, ct));

    /// <summary>
    /// Continues a paused VM (QMP <c>cont</c>); a persisted one is restored in a new VMM from its saved memory and
    /// device state. Resuming a running VM is a no-op.
    /// </summary>
    public Task<VmInfo> ResumeAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.ResumeAsync(id, ct));

    // VmLifecycle.Snapshot.cs

    /// <summary>Every complete snapshot (name, id, source VM, runtime, size, QEMU build).</summary>
    public IReadOnlyList<SnapshotInfo> ListSnapshots() =>
        PublicErrors.Run(() => _vms.ListSnapshots().Select(SnapshotInfo.From).ToList());

    /// <summary>
    /// Snapshots a running VM's memory and disk at one instant and lets it continue. The VM is paused for the
    /// capture: the running disk layer is frozen (it becomes the snapshot's read-only layer, the VM continues on a
    /// new one), the device state is saved (guest RAM is a shared file, so not in the stream), and the RAM file is
    /// copied sparsely into the snapshot. Everything is written to a temp directory renamed into place at the end.
    /// </summary>
    public Task<SnapshotInfo> CreateSnapshotAsync(string id, string? name, CancellationToken ct = default) =>
        PublicErrors.Run(async () => SnapshotInfo.From(await _vms.CreateSnapshotAsync(id, name, ct).ConfigureAwait(false)));

    /// <summary>Removes a snapshot no VM depends on (clones' disks layer on it): SNAPSHOT_IN_USE otherwise.</summary>
    public void RemoveSnapshot(string nameOrId) =>
        PublicErrors.Run(() => _vms.RemoveSnapshot(nameOrId));

    /// <summary>
    /// A new VM resumed from a snapshot: its own id, namespace, token, hostname, entropy, clock and an empty exec table.
    /// Its network policy and published ports are the source's, re-applied in its own namespace, unless
    /// <paramref name="options"/> replaces them. A published port another VM or process holds is PORT_IN_USE before
    /// anything is created.
    /// </summary>
    /// <param name="nameOrId">The snapshot.</param>
    /// <param name="options">Timeout, and the policy and ports that replace the source's (null: none, the source's).</param>
    /// <param name="ct">Cancels the wait (the clone may still come up).</param>
    /// <exception cref="VmsanException">SNAPSHOT_NOT_FOUND, SNAPSHOT_INCOMPATIBLE, PORT_IN_USE, INVALID_ARGUMENT, VM_BOOT_FAILED, ...</exception>
    public Task<VmInfo> CreateFromSnapshotAsync(string nameOrId, CloneOptions? options = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.CreateFromSnapshotAsync(nameOrId, options, ct));

    /// <summary>
    /// Removes boot snapshots whose inputs changed (a rebuilt kernel, agent, image or vmsan, another QEMU build), or
    /// every one with <paramref name="all"/>. A boot snapshot a VM is being restored from right now is kept; VMs made
    /// from one earlier do not depend on it (their disk is a hard link, their RAM their own copy).
    /// </summary>
    /// <returns>The ids removed.</returns>
    public Task<IReadOnlyList<string>> PruneBootSnapshotsAsync(bool all = false, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.PruneBootSnapshotsAsync(all, ct));

    // VmLifecycle.Stop.cs

    /// <summary>
    /// Stops a VM gracefully: the agent syncs and powers the guest off; after
    /// <see cref="VmsanClientOptions.StopTimeout"/> QMP quit; then SIGKILL. Stopping a stopped VM is a no-op.
    /// </summary>
    public Task<VmInfo> StopAsync(string id, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.StopAsync(id, ct));

    /// <summary>
    /// Removes a VM and everything it owns. A running VM needs <paramref name="force"/> (it is killed
    /// at once, like <c>docker rm -f</c>).
    /// </summary>
    public Task RemoveAsync(string id, bool force, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.RemoveAsync(id, force, ct));

    // VmLifecycle.Timeout.cs

    /// <summary>
    /// Sets the VM's timeout to <paramref name="timeout"/> from now (null clears it), optionally with a new action.
    /// The VM's supervisor is woken (SIGHUP) and acts at the new time; a stopped VM keeps it for its next start.
    /// </summary>
    public Task<VmInfo> SetTimeoutAsync(string id, TimeSpan? timeout, string? onTimeout = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.SetTimeoutAsync(id, timeout, onTimeout, ct));

    // VmLifecycle.Images.cs

    /// <summary>Pulls an image (registry reference or archive) into the cache, fetching only the blobs it lacks.</summary>
    /// <param name="spec">A registry reference, <c>docker-archive:FILE</c>, <c>oci:DIR[:TAG]</c> or <c>oci-archive:FILE[:TAG]</c>.</param>
    /// <param name="options">Platform, plain HTTP, credentials (null: the defaults).</param>
    /// <param name="progress">Receives per-blob bytes and phase lines (null: nowhere).</param>
    /// <param name="ct">Cancels the pull (blobs fetched completely stay cached).</param>
    /// <exception cref="VmsanException">IMAGE_NOT_FOUND, REGISTRY_UNREACHABLE, REGISTRY_AUTH_FAILED, PLATFORM_NOT_FOUND, DIGEST_MISMATCH, BAD_IMAGE, INVALID_ARGUMENT.</exception>
    public Task<ImageInfo> PullImageAsync(string spec, ImagePullOptions? options = null, IImagePullProgress? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.PullImageAsync(spec, (options ?? new()).ToPullOptions(), PullProgressAdapter.For(progress), ct));

    /// <summary>
    /// The cached record for a registry reference pulled for the same platform (like Docker's
    /// "missing" pull policy), else a pull. Archives and layouts are always read again (they are
    /// local files that may have changed; their blobs are still fetched only once).
    /// </summary>
    internal Task<ImageRecord> ResolveImageAsync(string spec, ImagePullOptions options, IImagePullProgress? progress, CancellationToken ct = default) =>
        _vms.ResolveImageAsync(spec, options.ToPullOptions(), PullProgressAdapter.For(progress), ct);

    /// <summary>Every cached image.</summary>
    public IReadOnlyList<ImageInfo> ListImages() =>
        PublicErrors.Run(() => _vms.ListImages());

    /// <summary>A cached image by name or digest, or null.</summary>
    /// <param name="spec">An image reference or digest.</param>
    public ImageInfo? FindImage(string spec) =>
        PublicErrors.Run(() => _vms.FindImage(spec));

    /// <summary>Forgets an image's name; its blobs and ext4 root go at the next prune (VMs may boot from it).</summary>
    public string RemoveImage(string spec) =>
        PublicErrors.Run(() => _vms.RemoveImage(spec));

    /// <summary>Deletes blobs and ext4 roots no cached name refers to, keeping the roots of existing VMs.</summary>
    public PruneResult PruneImages() =>
        PublicErrors.Run(() => _vms.PruneImages());

    // VmLifecycle.Runtimes.cs

    /// <summary>The runtimes this installation has recipes for, with their build state.</summary>
    public IReadOnlyList<RuntimeInfo> ListRuntimes() =>
        PublicErrors.Run(() => _vms.ListRuntimes());

    /// <summary>
    /// Builds runtime <paramref name="name"/> from its recipe (Debian packages, npm packages), unless the
    /// image was built from the same recipe, agent and base. Atomic: a failed or killed build leaves the
    /// previous image in use. The build's log lines go to <paramref name="progress"/>. Cancelling
    /// <paramref name="ct"/> stops the build: its process group gets SIGTERM, and the call throws
    /// <see cref="OperationCanceledException"/> only once none of the build's processes is left and its temp
    /// tree is removed (what is left after 60 s is SIGKILLed; the next build removes its files).
    /// </summary>
    public Task<RuntimeInfo> BuildRuntimeAsync(string name, Action<string>? progress = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.BuildRuntimeAsync(name, progress, ct));

    /// <summary>
    /// Deletes runtime image versions a rebuild superseded that no VM or snapshot of this VMSAN_HOME names and no
    /// process has open; <paramref name="name"/> limits it to one runtime. The current version always stays.
    /// </summary>
    public Task<RuntimePruneResult> PruneRuntimesAsync(string? name = null, CancellationToken ct = default) =>
        PublicErrors.Run(() => _vms.PruneRuntimesAsync(name, ct));
}
