using System.Buffers;
using System.Formats.Tar;
using Vmsan.Agent.Protocol.Files;

namespace Vmsan.Files;

/// <summary>An archive entry refused for safety (escaping path, device file, foreign hard link...).</summary>
public sealed class TarEntryRejectedException(string message) : Exception(message);

/// <summary>The destination refused a write (a file in the way, full disk, permissions).</summary>
public sealed class TarWriteException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>How <see cref="TarExtractor"/> writes.</summary>
public sealed record TarExtractOptions
{
    /// <summary>When set, every created entry is <c>lchown</c>ed to this uid (and <see cref="Gid"/>).</summary>
    public int? Uid { get; init; }

    /// <summary>Group for <see cref="Uid"/>.</summary>
    public int? Gid { get; init; }

    /// <summary>When set, the first component of every entry name is replaced by this name (download to a new name).</summary>
    public string? RenameTopLevel { get; init; }
}

/// <summary>
/// Streams a tar archive onto disk under a root directory, safely and atomically: entry names go through
/// <see cref="TarPaths"/>; every parent directory is opened beneath the root by the kernel (<see cref="BeneathFs"/>:
/// openat2 RESOLVE_BENEATH, then only *at calls on that directory fd), so nothing is written through a symlink that
/// leads outside the root — including one the same archive created, and one another process swaps in while the
/// extraction runs (no path is checked and then opened); device files and FIFOs are refused; hard
/// links may only point at files of the same archive. Each file is written to a temporary name in its own
/// directory and renamed into place once complete, so a failure leaves no partial file and no temporary.
/// File data goes through one bounded buffer: it is never held whole in memory.
/// </summary>
public sealed class TarExtractor
{
    private const int CopyBufferSize = 256 * 1024;

    private readonly string _root;
    private readonly TarExtractOptions _options;
    private readonly Dictionary<string, string> _extractedFiles = new(StringComparer.Ordinal);
    private readonly List<(string Relative, UnixFileMode Mode, DateTimeOffset Mtime)> _directories = [];
    /// <summary>
    /// Parent directories already walked by this extraction (relative path → real path): a deep tree's entries do not
    /// re-check every component. An entry that replaces one of them (a symlink over a symlink) empties the cache; the
    /// archive cannot replace a real directory (rename refuses), so what is cached stays what the archive left.
    /// </summary>
    private readonly Dictionary<string, int> _walked = new(StringComparer.Ordinal);
    private int _rootFd = -1;
    private readonly string _tempPrefix = $".vmsan-tmp-{Environment.ProcessId}-";
    private readonly string _tempSuffix = $"-{Random.Shared.Next():x8}";
    private readonly int _euid = FileSystemInterop.GetEUid();
    private readonly int _egid = FileSystemInterop.GetEGid();
    private long _files, _dirs, _links, _bytes;
    private int _tempCounter;

    /// <summary>Creates an extractor for <paramref name="root"/>, an existing directory.</summary>
    public TarExtractor(string root, TarExtractOptions? options = null)
    {
        _root = FileSystemInterop.RealPath(root) ?? throw new DirectoryNotFoundException($"{root}: no such directory");
        _options = options ?? new TarExtractOptions();
    }

    /// <summary>Extracts every entry; throws on the first refused entry (nothing further is written).</summary>
    /// <exception cref="TarEntryRejectedException">An unsafe entry.</exception>
    /// <exception cref="TarWriteException">The file system refused a write.</exception>
    /// <exception cref="InvalidDataException">The stream is not a tar archive.</exception>
    public async Task<TransferSummary> ExtractAsync(Stream archive, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        _rootFd = Fs(_root, () => BeneathFs.OpenRoot(_root));
        try
        {
            await using (var reader = new TarReader(new TarMetadataGuardStream(archive), leaveOpen: true))
            {
                while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
                {
                    await ExtractEntryAsync(entry, buffer, cancellationToken).ConfigureAwait(false);
                }
            }

            // Directory modes and mtimes last, deepest first: writing their children changed them. Each is opened
            // beneath the root, final symlink refused, and set through its fd.
            for (var i = _directories.Count - 1; i >= 0; i--)
            {
                var (relative, mode, mtime) = _directories[i];
                var fd = BeneathFs.OpenDirectoryBeneath(_rootFd, relative, readable: true, noFollowLast: true);
                if (fd < 0)
                {
                    // Replaced since (by another process): nothing of ours to set.
                    continue;
                }

                try
                {
                    var ticks = mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
                    var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
                    if (rest < 0)
                    {
                        seconds--;
                        rest += TimeSpan.TicksPerSecond;
                    }

                    Fs(Display(relative), () => FileSystemInterop.SetOwnerModeTime(fd, null, null, (int)mode & 0xFFF, seconds, rest * 100, Display(relative)));
                }
                finally
                {
                    FileSystemInterop.CloseQuietly(fd);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ForgetWalked();
            FileSystemInterop.CloseQuietly(_rootFd);
            _rootFd = -1;
        }

        return new TransferSummary(_files, _dirs, _links, _bytes);
    }

    private async Task ExtractEntryAsync(TarEntry entry, byte[] buffer, CancellationToken ct)
    {
        switch (entry.EntryType)
        {
            case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes or TarEntryType.LongLink or TarEntryType.LongPath:
                return;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                throw new TarEntryRejectedException($"'{TarPaths.Printable(entry.Name)}': device files and FIFOs are refused");
            case TarEntryType.Directory or TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile
                or TarEntryType.SymbolicLink or TarEntryType.HardLink:
                break;
            default:
                throw new TarEntryRejectedException($"'{TarPaths.Printable(entry.Name)}': unsupported entry type {entry.EntryType}");
        }

        var relative = Normalize(entry.Name);
        if (relative.Length == 0)
        {
            if (entry.EntryType == TarEntryType.Directory)
            {
                // "./" (tar c .): the root itself, which the archive does not own.
                return;
            }

            throw new TarEntryRejectedException($"'{TarPaths.Printable(entry.Name)}': a {entry.EntryType} cannot replace the destination directory");
        }

        var slash = relative.LastIndexOf('/');
        var parent = EnsureParent(relative, slash < 0 ? "" : relative[..slash]);
        var leaf = slash < 0 ? relative : relative[(slash + 1)..];
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                ExtractDirectory(relative, parent, leaf, entry);
                break;
            case TarEntryType.SymbolicLink:
                ExtractSymlink(relative, parent, leaf, entry);
                break;
            case TarEntryType.HardLink:
                ExtractHardLink(relative, parent, leaf, entry);
                break;
            default:
                await ExtractFileAsync(relative, parent, leaf, entry, buffer, ct).ConfigureAwait(false);
                break;
        }
    }

    private string Normalize(string name)
    {
        if (!TarPaths.TryNormalize(name, out var relative, out var reason))
        {
            throw new TarEntryRejectedException(reason);
        }

        if (_options.RenameTopLevel is { } rename && relative.Length > 0)
        {
            var slash = relative.IndexOf('/', StringComparison.Ordinal);
            relative = slash < 0 ? rename : rename + relative[slash..];
        }

        return relative;
    }

    private string Display(string relative) => relative.Length == 0 ? _root : Path.Join(_root, relative);

    /// <summary>Opens (creating as needed) the parent directories of an entry, beneath the root; returns the parent's fd.</summary>
    private int EnsureParent(string relative, string parentRelative)
    {
        if (parentRelative.Length == 0)
        {
            return _rootFd;
        }

        if (_walked.TryGetValue(parentRelative, out var known))
        {
            return known;
        }

        var current = _rootFd;
        var start = 0;
        while (start <= parentRelative.Length)
        {
            var slash = parentRelative.IndexOf('/', start);
            var end = slash < 0 ? parentRelative.Length : slash;
            var prefix = parentRelative[..end];
            if (!_walked.TryGetValue(prefix, out var next))
            {
                next = StepInto(relative, prefix, current, parentRelative[start..end], mode: null);
                _walked[prefix] = next;
            }

            current = next;
            start = end + 1;
        }

        return current;
    }

    /// <summary>
    /// Opens the directory <paramref name="prefix"/> beneath the root (creating it in <paramref name="parentFd"/> when
    /// missing); a symlink on the way is followed only when the kernel finds it stays beneath the root.
    /// </summary>
    private int StepInto(string relative, string prefix, int parentFd, string name, UnixFileMode? mode)
    {
        var fd = BeneathFs.OpenDirectoryBeneath(_rootFd, prefix);
        if (fd == -BeneathFs.ENoEnt)
        {
            var createMode = mode is { } m ? (int)(m | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute) & 0xFFF : 0x1FF;
            var made = BeneathFs.MkdirAt(parentFd, name, createMode);
            if (made == 0)
            {
                if (Owner() is ({ } uid, var gid))
                {
                    Fs(Display(prefix), () => BeneathFs.LChownAt(parentFd, name, uid, gid ?? -1, Display(prefix)));
                }
            }
            else if (made != -BeneathFs.EExist)
            {
                throw new TarWriteException($"{Display(prefix)}: mkdir: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(-made)}");
            }

            fd = BeneathFs.OpenDirectoryBeneath(_rootFd, prefix);
        }

        if (fd >= 0)
        {
            return fd;
        }

        throw -fd switch
        {
            BeneathFs.EXDev or BeneathFs.ELoop => new TarEntryRejectedException(
                $"'{TarPaths.Printable(relative)}' would be written through a symlink at '{TarPaths.Printable(Display(prefix))}' that leads outside the destination"),
            BeneathFs.ENotDir => new TarWriteException($"{Display(prefix)} exists and is not a directory"),
            _ => new TarWriteException($"{Display(prefix)}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(-fd)}"),
        };
    }

    private void ForgetWalked()
    {
        foreach (var fd in _walked.Values)
        {
            FileSystemInterop.CloseQuietly(fd);
        }

        _walked.Clear();
    }

    private void ExtractDirectory(string relative, int parent, string leaf, TarEntry entry)
    {
        var stat = Fs(Display(relative), () => PathStat.At(parent, leaf));
        var fd = StepInto(relative, relative, parent, leaf, stat.Kind == PathKind.Symlink ? null : entry.Mode);
        if (_walked.TryGetValue(relative, out var old))
        {
            FileSystemInterop.CloseQuietly(old);
        }

        _walked[relative] = fd;
        if (stat.Kind != PathKind.Symlink)
        {
            // A symlink was only checked to stay inside; its mode and mtime belong to whatever it points at.
            _directories.Add((relative, entry.Mode, entry.ModificationTime));
        }

        _dirs++;
    }

    private void ExtractSymlink(string relative, int parent, string leaf, TarEntry entry)
    {
        if (string.IsNullOrEmpty(entry.LinkName) || entry.LinkName.Contains('\0', StringComparison.Ordinal))
        {
            throw new TarEntryRejectedException($"'{TarPaths.Printable(relative)}': empty or invalid symlink target");
        }

        // The link may point anywhere (absolute targets are common); what matters is never writing through it,
        // which StepInto checks on disk for every later entry.
        PlaceAtomically(relative, parent, leaf, temp =>
        {
            BeneathFs.SymlinkAt(entry.LinkName, parent, temp, Display(relative));
            if (Owner() is ({ } uid, var gid))
            {
                BeneathFs.LChownAt(parent, temp, uid, gid ?? -1, Display(relative));
            }
        });
        _links++;
    }

    private void ExtractHardLink(string relative, int parent, string leaf, TarEntry entry)
    {
        if (!TarPaths.TryNormalize(entry.LinkName, out var linkRelative, out var reason))
        {
            throw new TarEntryRejectedException($"hard link '{TarPaths.Printable(relative)}': {reason}");
        }

        if (_options.RenameTopLevel is { } rename && linkRelative.Length > 0)
        {
            var slash = linkRelative.IndexOf('/', StringComparison.Ordinal);
            linkRelative = slash < 0 ? rename : rename + linkRelative[slash..];
        }

        if (!_extractedFiles.TryGetValue(linkRelative, out var existing))
        {
            throw new TarEntryRejectedException($"hard link '{TarPaths.Printable(relative)}' points at '{TarPaths.Printable(entry.LinkName)}', which is not a file of this archive");
        }

        var existingSlash = existing.LastIndexOf('/');
        var existingParent = EnsureParent(existing, existingSlash < 0 ? "" : existing[..existingSlash]);
        var existingLeaf = existing[(existingSlash + 1)..];
        PlaceAtomically(relative, parent, leaf, temp => BeneathFs.LinkAt(existingParent, existingLeaf, parent, temp, Display(relative)));
        _extractedFiles[relative] = relative;
        _files++;
    }

    private async Task ExtractFileAsync(string relative, int parent, string leaf, TarEntry entry, byte[] buffer, CancellationToken ct)
    {
        var target = Display(relative);
        var temp = TempName();
        var mode = (int)entry.Mode & 0xFFF;
        // Created with its final permission bits when the umask keeps them (one fchmod less per file); set-id bits
        // always go through fchmod after fchown, which clears them.
        var createMode = mode & 0x1FF;
        var needsChmod = (mode & ~0x1FF) != 0 || (createMode & FileSystemInterop.ProcessUmask) != 0;
        var fd = -1;
        try
        {
            try
            {
                fd = BeneathFs.CreateExclusiveAt(parent, temp, createMode, target);
                long offset = 0;
                if (entry.DataStream is { } data)
                {
                    while (true)
                    {
                        var n = await data.ReadAsync(buffer, ct).ConfigureAwait(false);
                        if (n == 0)
                        {
                            break;
                        }

                        // Synchronous: a page-cache write is cheaper than a thread-pool hop (which costs most under emulation).
                        // All-zero runs are skipped, not written: a sparse file stays sparse (a 9 GiB file of holes costs no disk).
                        if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
                        {
                            FileSystemInterop.PWriteAll(fd, buffer.AsSpan(0, n), offset, target);
                        }

                        offset += n;
                    }
                }

                if (offset != entry.Length)
                {
                    // The archive ended inside the entry: the bytes received are not the file, so it never reaches its name.
                    throw new InvalidDataException($"'{TarPaths.Printable(relative)}': the archive ends {entry.Length - offset} bytes short of the entry's {entry.Length}");
                }

                FileSystemInterop.FTruncate(fd, offset, target);

                _bytes += offset;
                var (uid, gid) = Owner();
                var ticks = entry.ModificationTime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
                var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
                if (rest < 0)
                {
                    seconds--;
                    rest += TimeSpan.TicksPerSecond;
                }

                FileSystemInterop.SetOwnerModeTime(fd, uid, gid, needsChmod ? mode : null, seconds, rest * 100, target);
                var closing = fd;
                fd = -1;
                FileSystemInterop.Close(closing, target);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new TarWriteException($"{target}: {e.Message}", e);
            }
            finally
            {
                if (fd >= 0)
                {
                    FileSystemInterop.CloseQuietly(fd);
                }
            }

            Rename(relative, parent, temp, leaf);
            temp = null;
        }
        finally
        {
            if (temp is not null)
            {
                BeneathFs.UnlinkQuietly(parent, temp);
            }
        }

        _extractedFiles[relative] = relative;
        _files++;
    }

    private void PlaceAtomically(string relative, int parent, string leaf, Action<string> create)
    {
        string? temp = TempName();
        try
        {
            Fs(Display(relative), () => create(temp));
            Rename(relative, parent, temp, leaf);
            temp = null;
        }
        finally
        {
            if (temp is not null)
            {
                BeneathFs.UnlinkQuietly(parent, temp);
            }
        }
    }

    private void Rename(string relative, int parent, string temp, string leaf)
    {
        // renameat(2) within one directory fd: atomic, and it replaces a symlink rather than writing through it;
        // EISDIR when a directory is there.
        if (!Fs(Display(relative), () => BeneathFs.TryRenameAt(parent, temp, leaf, Display(relative))))
        {
            throw new TarWriteException($"'{TarPaths.Printable(relative)}': a directory is in the way");
        }

        // rename(2) between two names of one inode (a hard link to the entry itself) succeeds and
        // does nothing: the temp name would stay behind.
        if (PathStat.At(parent, temp).Kind != PathKind.Missing)
        {
            BeneathFs.UnlinkQuietly(parent, temp);
        }

        if (_walked.Count > 0 && _walked.ContainsKey(relative))
        {
            // A walked symlink was replaced: later entries below it must be walked again.
            ForgetWalked();
        }
    }

    private string TempName() =>
        string.Concat(_tempPrefix, (++_tempCounter).ToString(System.Globalization.CultureInfo.InvariantCulture), _tempSuffix);

    /// <summary>The owner to set, or null when a new entry already has it (created by this process with those ids).</summary>
    private (int? Uid, int? Gid) Owner()
    {
        if (_options.Uid is not { } uid)
        {
            return (null, null);
        }

        var gid = _options.Gid ?? -1;
        return uid == _euid && (gid == -1 || gid == _egid) ? (null, null) : (uid, gid);
    }

    private static T Fs<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TarWriteException($"{path}: {e.Message}", e);
        }
    }

    private static void Fs(string path, Action action) => Fs(path, () =>
    {
        action();
        return 0;
    });

}
