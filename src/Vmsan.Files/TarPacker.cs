using System.Buffers;
using System.Globalization;
using System.Text;
using Vmsan.Agent.Protocol.Files;

namespace Vmsan.Files;

/// <summary>One path to pack and the name it takes in the archive.</summary>
/// <param name="Path">A file, directory or symlink on disk (a symlink is packed as a symlink, not followed).</param>
/// <param name="EntryName">Its name in the archive; a directory's content goes under <c>EntryName/</c>.</param>
public sealed record TarSource(string Path, string EntryName);

/// <summary>
/// Streams files, directories (recursively) and symlinks into a POSIX tar archive: a plain ustar header per entry,
/// preceded by a small PAX header only when ustar cannot say it exactly (a long or non-ASCII name or link target, a
/// size of 8 GiB or more, a sub-second mtime); GNU tar and System.Formats.Tar read it. File data is read with large
/// synchronous reads straight into one pooled buffer (no per-file stream objects, no thread-pool hop per read): this
/// runs in the guest, where every instruction is emulated. A file that grows while it is read is cut at the size it
/// had when its header was written, and one that shrinks is padded with zeros, so the archive stays well-formed.
/// FIFOs, sockets and devices are skipped (reported through <c>skipped</c>), as are files of pseudo file systems such as
/// /proc (their stat sizes are not their content: /proc/kcore says 128 TiB) and what <c>access</c>'s user cannot read.
/// </summary>
public static class TarPacker
{
    /// <summary>Size of the reads of file data (and of the largest write to <c>output</c>).</summary>
    public const int DataBufferSize = 1024 * 1024;

    /// <summary>Writes the archive to <paramref name="output"/> (left open); returns what it holds.</summary>
    /// <param name="output">Where the archive goes.</param>
    /// <param name="sources">What to pack, in order.</param>
    /// <param name="skipped">Told about each path left out (unreadable, or not a file, directory or symlink).</param>
    /// <param name="cancellationToken">Stops the packing.</param>
    /// <param name="access">When set, every lstat, open and listing runs through it (the agent: as the request's user).</param>
    public static async Task<TransferSummary> PackAsync(Stream output, IEnumerable<TarSource> sources, Action<string>? skipped = null,
        CancellationToken cancellationToken = default, IFileAccess? access = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(sources);
        long files = 0, dirs = 0, links = 0, bytes = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(DataBufferSize);
        try
        {
            var pending = new Stack<(string Path, string Name)>();
            foreach (var source in sources.Reverse())
            {
                pending.Push((source.Path, source.EntryName.TrimEnd('/')));
            }

            while (pending.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (path, name) = pending.Pop();
                PathStat stat;
                try
                {
                    stat = As(access, () => PathStat.Of(path));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Not searchable by the user.
                    skipped?.Invoke(path);
                    continue;
                }

                switch (stat.Kind)
                {
                    case PathKind.Missing:
                        // Gone since it was listed.
                        skipped?.Invoke(path);
                        continue;
                    case PathKind.Directory:
                        await WriteHeaderAsync(output, buffer, TarHeader.Directory, name + "/", null, 0, stat, cancellationToken).ConfigureAwait(false);
                        dirs++;
                        List<string> children;
                        try
                        {
                            children = As(access, () => ListNames(path));
                        }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        {
                            // Not readable by the user: sent as an empty directory.
                            skipped?.Invoke(path);
                            children = [];
                        }

                        for (var i = children.Count - 1; i >= 0; i--)
                        {
                            pending.Push((System.IO.Path.Join(path, children[i]), name + "/" + children[i]));
                        }

                        break;
                    case PathKind.Symlink:
                        var target = As(access, () => new FileInfo(path).LinkTarget) ?? "";
                        await WriteHeaderAsync(output, buffer, TarHeader.Symlink, name, target, 0, stat, cancellationToken).ConfigureAwait(false);
                        links++;
                        break;
                    case PathKind.File:
                        if (await WriteFileAsync(output, buffer, path, name, stat, access, cancellationToken).ConfigureAwait(false))
                        {
                            bytes += stat.Size;
                            files++;
                        }
                        else
                        {
                            skipped?.Invoke(path);
                        }

                        break;
                    default:
                        skipped?.Invoke(path);
                        break;
                }
            }

            // End of archive: two zero blocks.
            buffer.AsSpan(0, 2 * TarHeader.BlockSize).Clear();
            await output.WriteAsync(buffer.AsMemory(0, 2 * TarHeader.BlockSize), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return new TransferSummary(files, dirs, links, bytes);
    }

    private static T As<T>(IFileAccess? access, Func<T> action) => access is null ? action() : access.Run(action);

    private static List<string> ListNames(string directory)
    {
        var names = new System.IO.Enumeration.FileSystemEnumerable<string>(directory,
            (ref System.IO.Enumeration.FileSystemEntry entry) => entry.FileName.ToString(),
            new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = false, RecurseSubdirectories = false }).ToList();
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private static ValueTask WriteHeaderAsync(Stream output, byte[] buffer, byte type, string name, string? linkName, long size, PathStat stat,
        CancellationToken cancellationToken)
    {
        var n = TarHeader.Write(buffer, type, name, linkName, stat.Mode, size, stat.MtimeSeconds, stat.MtimeNanos);
        return output.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
    }

    /// <summary>Header, then exactly <c>stat.Size</c> bytes (cut or zero-padded), then padding; false when the file cannot be opened.</summary>
    private static async Task<bool> WriteFileAsync(Stream output, byte[] buffer, string path, string name, PathStat stat, IFileAccess? access,
        CancellationToken cancellationToken)
    {
        // O_NOFOLLOW: a file swapped for a symlink since the lstat is not followed.
        var fd = As(access, () => FileSystemInterop.OpenForRead(path));
        if (fd < 0)
        {
            return false;
        }

        if (FileSystemInterop.IsOnPseudoFileSystem(fd))
        {
            FileSystemInterop.CloseQuietly(fd);
            return false;
        }

        try
        {
            var size = stat.Size;
            // The header goes out with the file's first data (one write for a small file).
            var used = TarHeader.Write(buffer, TarHeader.File, name, null, stat.Mode, size, stat.MtimeSeconds, stat.MtimeNanos);
            long offset = 0;
            var eof = false;
            while (offset < size || used > 0)
            {
                var want = (int)Math.Min(buffer.Length - used, size - offset);
                var n = 0;
                if (want > 0)
                {
                    n = eof ? 0 : FileSystemInterop.PRead(fd, buffer.AsSpan(used, want), offset, path);
                    if (n == 0)
                    {
                        // Shrunk (or unreadable past here): zeros keep the archive valid.
                        eof = true;
                        buffer.AsSpan(used, want).Clear();
                        n = want;
                    }
                }

                offset += n;
                used += n;
                if (offset == size)
                {
                    var padding = (int)(-size & (TarHeader.BlockSize - 1));
                    if (used + padding > buffer.Length)
                    {
                        await output.WriteAsync(buffer.AsMemory(0, used), cancellationToken).ConfigureAwait(false);
                        used = 0;
                    }

                    buffer.AsSpan(used, padding).Clear();
                    used += padding;
                }

                await output.WriteAsync(buffer.AsMemory(0, used), cancellationToken).ConfigureAwait(false);
                used = 0;
            }
        }
        finally
        {
            FileSystemInterop.CloseQuietly(fd);
        }

        return true;
    }
}

/// <summary>ustar headers, with a PAX extended header in front when needed.</summary>
internal static class TarHeader
{
    public const int BlockSize = 512;
    public const byte File = (byte)'0';
    public const byte Symlink = (byte)'2';
    public const byte Directory = (byte)'5';
    private const byte PaxExtended = (byte)'x';
    private const long MaxOctal11 = 0x1FFFFFFFF; // 077777777777

    /// <summary>Writes the header block(s) of one entry at the start of <paramref name="buffer"/>; returns their length.</summary>
    public static int Write(byte[] buffer, byte type, string name, string? linkName, int mode, long size, long mtimeSeconds, uint mtimeNanos)
    {
        var nameFits = FitsName(name);
        var linkFits = linkName is null || (linkName.Length <= 100 && Ascii.IsValid(linkName));
        var ticks = mtimeNanos / 100;
        var mtimeFits = ticks == 0 && mtimeSeconds is >= 0 and <= MaxOctal11;
        var sizeFits = size <= MaxOctal11;
        var used = 0;
        if (!(nameFits && linkFits && mtimeFits && sizeFits))
        {
            var records = new StringBuilder();
            if (!nameFits)
            {
                Record(records, "path", name);
            }

            if (!linkFits)
            {
                Record(records, "linkpath", linkName!);
            }

            if (!sizeFits)
            {
                Record(records, "size", size.ToString(CultureInfo.InvariantCulture));
            }

            if (!mtimeFits)
            {
                var value = mtimeSeconds.ToString(CultureInfo.InvariantCulture);
                if (ticks != 0)
                {
                    value += "." + ticks.ToString("D7", CultureInfo.InvariantCulture).TrimEnd('0');
                }

                Record(records, "mtime", value);
            }

            var data = Encoding.UTF8.GetBytes(records.ToString());
            var blocks = (data.Length + BlockSize - 1) / BlockSize;
            if (BlockSize * (2 + blocks) > buffer.Length)
            {
                throw new IOException($"tar header of '{TarPaths.Printable(name)}' is too large");
            }

            var leaf = name.TrimEnd('/');
            leaf = leaf[(leaf.LastIndexOf('/') + 1)..];
            Block(buffer.AsSpan(0, BlockSize), PaxExtended, AsciiPrefix("PaxHeaders/" + leaf, 100), null, 0x1A4, data.Length,
                Math.Clamp(mtimeSeconds, 0, MaxOctal11));
            data.CopyTo(buffer.AsSpan(BlockSize));
            buffer.AsSpan(BlockSize + data.Length, (blocks * BlockSize) - data.Length).Clear();
            used = BlockSize * (1 + blocks);
        }

        // The ustar block itself: exact where it fits, else a truncated stand-in the PAX records override.
        Block(buffer.AsSpan(used, BlockSize), type, nameFits ? name : AsciiPrefix(name, 100), linkFits ? linkName : AsciiPrefix(linkName!, 100), mode,
            sizeFits ? size : 0, Math.Clamp(mtimeSeconds, 0, MaxOctal11));
        return used + BlockSize;
    }

    /// <summary>
    /// True when the name fits ustar's name field: ASCII, at most 100 bytes. The ustar prefix field is not used:
    /// System.Formats.Tar ignores it in an archive that also holds PAX headers.
    /// </summary>
    private static bool FitsName(string name) => name.Length <= 100 && Ascii.IsValid(name);

    private static string AsciiPrefix(string s, int max)
    {
        var sb = new StringBuilder(Math.Min(s.Length, max));
        foreach (var c in s)
        {
            if (sb.Length == max)
            {
                break;
            }

            sb.Append(c is >= ' ' and < (char)127 ? c : '_');
        }

        return sb.ToString();
    }

    /// <summary>A PAX record: "LEN key=value\n", where LEN counts itself.</summary>
    private static void Record(StringBuilder records, string key, string value)
    {
        var payload = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) + 3; // ' ', '=', '\n'
        var length = payload + 1;
        while (length != payload + length.ToString(CultureInfo.InvariantCulture).Length)
        {
            length = payload + length.ToString(CultureInfo.InvariantCulture).Length;
        }

        records.Append(length.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(key).Append('=').Append(value).Append('\n');
    }

    private static void Block(Span<byte> block, byte type, string name, string? linkName, int mode, long size, long mtime)
    {
        block.Clear();
        Encoding.ASCII.GetBytes(name, block[..100]);

        Octal(block.Slice(100, 8), mode & 0xFFF);
        Octal(block.Slice(108, 8), 0);
        Octal(block.Slice(116, 8), 0);
        Octal(block.Slice(124, 12), size);
        Octal(block.Slice(136, 12), mtime);
        block[156] = type;
        if (linkName is not null)
        {
            Encoding.ASCII.GetBytes(linkName, block.Slice(157, 100));
        }

        "ustar\0"u8.CopyTo(block.Slice(257, 6));
        "00"u8.CopyTo(block.Slice(263, 2));
        block.Slice(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in block)
        {
            sum += b;
        }

        Octal(block.Slice(148, 7), sum);
        block[155] = (byte)' ';
    }

    /// <summary>Zero-padded octal digits filling all but the last byte of the field, then NUL.</summary>
    private static void Octal(Span<byte> field, long value)
    {
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }

        field[digits] = 0;
    }
}
