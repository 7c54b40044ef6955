using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.Runtimes;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    public IReadOnlyList<RuntimeInfo> ListRuntimes()
    {
        var catalog = new RuntimeCatalog(_options.Paths);
        return catalog.Names().Select(catalog.Info).ToList();
    }

    /// <summary>
    /// The base image a create of runtime <paramref name="runtime"/> layers on: the version file the runtime's
    /// pointer names now (never the pointer: a later build renames the pointer, the version file stays).
    /// </summary>
    internal string RuntimeImage(string runtime) =>
        new RuntimeCatalog(_options.Paths).CurrentImage(runtime) ?? _options.Paths.RuntimeRootfs(runtime);

    public async Task<RuntimeInfo> BuildRuntimeAsync(string name, Action<string>? progress = null, CancellationToken ct = default)
    {
        RequireRoot();
        var catalog = new RuntimeCatalog(_options.Paths);
        catalog.Load(name);
        RefuseUnversionedInUse(catalog, name);
        var info = await catalog.BuildAsync(name, progress, ct).ConfigureAwait(false);
        // The build's own leftovers: versions it superseded that nothing uses any more.
        var pruned = await PruneRuntimesAsync(name, ct).ConfigureAwait(false);
        foreach (var f in pruned.Removed)
            progress?.Invoke($"removed unused {f}");
        return catalog.Info(name);
    }

    /// <summary>
    /// An image from before versioned builds is the plain file <c>rootfs.ext4</c>, and the overlays of VMs made from it
    /// name that path: once a build turns the name into the pointer, they would read the new image under their old
    /// writes. Boot snapshots of it are a cache and go; a VM or a snapshot of one stops the build.
    /// </summary>
    private void RefuseUnversionedInUse(RuntimeCatalog catalog, string name)
    {
        var plain = _options.Paths.RuntimeRootfs(name);
        if (catalog.CurrentImage(name) != Path.GetFullPath(plain))
            return;
        var users = new List<string>();
        foreach (var id in _store.ListIds())
            if (_store.TryLoad(id) is { } rec && rec.BaseImage == plain)
                users.Add(id);
        var store = Snapshots;
        foreach (var snap in store.List())
        {
            if (snap.BaseImage != plain)
                continue;
            if (snap.Kind == SnapshotKinds.Boot)
            {
                Directory.Delete(_options.Paths.SnapshotDir(snap.Id), recursive: true);
                Log($"removed boot snapshot {snap.Id}: it was made from the unversioned {plain}");
            }
            else
                users.Add("snapshot " + snap.Id);
        }
        if (users.Count > 0)
            throw new VmsanException(ErrorCode.RuntimeInUse,
                $"Runtime '{name}' is an image from before versioned builds ({plain}), and {string.Join(", ", users)} use it by that name: a rebuild would change their disks' base under them.",
                "Remove those VMs and snapshots (vmsan rm -f ID, vmsan snapshot rm ID), then build again; images built from now on are versioned and a rebuild never affects existing VMs.");
    }

    /// <summary>Every base image named by a VM or snapshot of this VMSAN_HOME (full paths).</summary>
    internal HashSet<string> BaseImagesInUse()
    {
        var inUse = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in _store.ListIds())
            if (_store.TryLoad(id) is { } rec)
                inUse.Add(Path.GetFullPath(rec.BaseImage));
        foreach (var snap in Snapshots.List())
            inUse.Add(Path.GetFullPath(snap.BaseImage));
        return inUse;
    }

    /// <summary>
    /// Deletes runtime image versions that are not current, that no VM or snapshot of this VMSAN_HOME names and that
    /// no process has open (a VM of another VMSAN_HOME sharing these assets, while it runs). Under each runtime's
    /// build lock, so it never races a build's publish; a runtime being built is skipped.
    /// </summary>
    public async Task<RuntimePruneResult> PruneRuntimesAsync(string? only = null, CancellationToken ct = default)
    {
        RequireRoot();
        var catalog = new RuntimeCatalog(_options.Paths);
        var inUse = BaseImagesInUse();
        var open = new Lazy<HashSet<string>>(OpenFiles);
        var removed = new List<string>();
        var kept = new List<string>();
        var busy = new List<string>();
        long bytes = 0;
        foreach (var name in only is null ? catalog.Names() : [only])
        {
            if (!Directory.Exists(_options.Paths.RuntimeDir(name)))
                continue;
            using var buildLock = FileLock.TryAcquire(catalog.BuildLockPath(name));
            if (buildLock is null)
            {
                busy.Add(name);
                continue;
            }
            var (unused, used) = RuntimeCatalog.Partition(catalog.Versions(name), catalog.CurrentImage(name), inUse, v => open.Value.Contains(v));
            kept.AddRange(used);
            foreach (var v in unused)
            {
                bytes += await AllocatedBytesAsync(v, ct).ConfigureAwait(false);
                File.Delete(v);
                File.Delete(Path.ChangeExtension(v, ".json"));
                removed.Add(v);
                Log($"runtime {name}: removed unused image {Path.GetFileName(v)}");
            }
        }
        return new RuntimePruneResult(removed, bytes, kept, busy);
    }

    /// <summary>The bytes a (sparse) file holds on disk.</summary>
    private async Task<long> AllocatedBytesAsync(string file, CancellationToken ct)
    {
        var r = await _options.Commands.RunAsync("stat", ["-c", "%b %B", file], ct: ct).ConfigureAwait(false);
        var parts = r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return r.Ok && parts.Length == 2 && long.TryParse(parts[0], out var blocks) && long.TryParse(parts[1], out var size) ? blocks * size : 0;
    }

    /// <summary>Files some process has open (the targets of <c>/proc/PID/fd/*</c>).</summary>
    private static HashSet<string> OpenFiles()
    {
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out _))
                continue;
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(proc, "fd")))
                    if (new FileInfo(fd).LinkTarget is { } target)
                        files.Add(target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }
        return files;
    }
}
