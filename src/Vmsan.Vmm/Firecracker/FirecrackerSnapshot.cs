using Vmsan.Core.Interop;

namespace Vmsan.Vmm.Firecracker;

/// <summary>
/// Firecracker's own snapshots (<c>PUT /snapshot/create</c>, <c>PUT /snapshot/load</c>) and the files they need in
/// the jailer's chroot. Firecracker sees only its jail, so a snapshot is written to <c>/snapshot</c> inside it (a
/// directory owned by the VM's uid, which Firecracker runs as) and moved out by the caller; a clone gets the
/// snapshot's files hard-linked into its own jail at the same paths before it loads them.
/// </summary>
public static class FirecrackerSnapshot
{
    /// <summary>The directory, inside the jail, that Firecracker writes a snapshot to and loads one from.</summary>
    public const string Dir = "/snapshot";

    /// <summary>The microVM state (devices, vCPUs), as Firecracker sees it.</summary>
    public const string StateFile = Dir + "/vmstate";

    /// <summary>Guest memory, as Firecracker sees it.</summary>
    public const string MemoryFile = Dir + "/memory";

    /// <summary>A host path inside <paramref name="jailRoot"/> for a path Firecracker sees.</summary>
    public static string HostPath(string jailRoot, string jailPath) => Path.Combine(jailRoot, jailPath.TrimStart('/'));

    /// <summary>
    /// A full snapshot of a running Firecracker VM, with its disk frozen at the same instant: <c>PATCH /vm</c> Paused,
    /// <c>PUT /snapshot/create</c> (Full; state and memory into the jail's <see cref="Dir"/>, which Firecracker writes
    /// as the VM's uid), then <paramref name="copyDisk"/> while the vCPUs are still stopped (Firecracker has no disk
    /// snapshot of its own: after snapshot/create the block device's writes have reached the host file, so a copy
    /// made now matches the memory), and <c>PATCH /vm</c> Resumed, even when a step failed. Returns the host paths of
    /// the state and memory files and how long the VM was paused.
    /// </summary>
    public static async Task<(string State, string Memory, int PausedMs)> CreateAsync(FirecrackerControl control, string jailRoot, int uid, int gid,
        Func<CancellationToken, Task> copyDisk, CancellationToken ct)
    {
        var dir = HostPath(jailRoot, Dir);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        LibcPublic.Chown(dir, uid, gid);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await control.PauseAsync(ct).ConfigureAwait(false);
        var paused = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await control.CreateSnapshotAsync(StateFile, MemoryFile, ct).ConfigureAwait(false);
            await copyDisk(ct).ConfigureAwait(false);
        }
        finally
        {
            await control.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
        }
        return (HostPath(jailRoot, StateFile), HostPath(jailRoot, MemoryFile), (int)paused.ElapsedMilliseconds);
    }

    /// <summary>
    /// Links a snapshot's state and memory into a clone's jail at <see cref="StateFile"/> and <see cref="MemoryFile"/>
    /// (hard links: the same inodes, so clones share the memory file's page cache; Firecracker opens both read-only
    /// and maps the memory MAP_PRIVATE, so no clone writes them). A copy when the snapshot lives on another filesystem.
    /// </summary>
    public static void LinkIntoJail(string jailRoot, string state, string memory, int uid, int gid)
    {
        var dir = HostPath(jailRoot, Dir);
        Directory.CreateDirectory(dir);
        // The VM's uid must get through it (the supervisor's umask makes new directories root's alone).
        LibcPublic.Chown(dir, uid, gid);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var (source, target) in (ReadOnlySpan<(string, string)>)[(state, StateFile), (memory, MemoryFile)])
        {
            var path = HostPath(jailRoot, target);
            if (LibcPublic.TryHardLink(source, path))
                continue;
            File.Copy(source, path, overwrite: true);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    /// <summary>
    /// Into a Firecracker that has only its logger and metrics configured (the only resources allowed before a load):
    /// <c>PUT /snapshot/load</c> of the files at <see cref="StateFile"/>/<see cref="MemoryFile"/> in its jail with a
    /// <c>File</c> memory backend (MAP_PRIVATE, pages read on first touch), left paused: the caller resumes it
    /// (<c>PATCH /vm</c> Resumed) when it is ready to re-key the guest. No network override: every VM's TAP is
    /// <c>tap0</c> in its own namespace, the name the snapshot recorded.
    /// </summary>
    public static async Task LoadAsync(FirecrackerApiClient api, CancellationToken ct)
    {
        await FirecrackerBoot.ConfigureLoggingAsync(api, ct).ConfigureAwait(false);
        await api.LoadSnapshotAsync(StateFile, MemoryFile, resume: false, ct).ConfigureAwait(false);
    }

    /// <summary>"firecracker 1.17.0" from <c>firecracker --version</c>'s first line ("Firecracker v1.17.0"), as <see cref="FirecrackerControl.VersionAsync"/> names it; null when unreadable.</summary>
    public static string? ParseVersion(string versionOutput)
    {
        var line = versionOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        const string prefix = "Firecracker v";
        return line is not null && line.StartsWith(prefix, StringComparison.Ordinal) && line.Length > prefix.Length
            ? "firecracker " + line[prefix.Length..].Split(' ')[0]
            : null;
    }
}
