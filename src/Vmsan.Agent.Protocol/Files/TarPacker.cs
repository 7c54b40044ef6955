using System.Formats.Tar;

namespace Vmsan.Agent.Protocol.Files;

/// <summary>One path to pack and the name it takes in the archive.</summary>
/// <param name="Path">A file, directory or symlink on disk (a symlink is packed as a symlink, not followed).</param>
/// <param name="EntryName">Its name in the archive; a directory's content goes under <c>EntryName/</c>.</param>
public sealed record TarSource(string Path, string EntryName);

/// <summary>
/// Streams files, directories (recursively) and symlinks into a PAX tar archive (long and unicode names, exact
/// mtimes; GNU tar reads it). Data is copied through bounded buffers; a file that grows while it is read is cut
/// at the size it had when its header was written, and one that shrinks is padded with zeros, so the archive
/// stays well-formed. FIFOs, sockets and devices are skipped (reported through <c>skipped</c>).
/// </summary>
public static class TarPacker
{
    /// <summary>Writes the archive to <paramref name="output"/> (left open); returns what it holds.</summary>
    public static async Task<TransferSummary> PackAsync(Stream output, IEnumerable<TarSource> sources, Action<string>? skipped = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(sources);
        long files = 0, dirs = 0, links = 0, bytes = 0;
        var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await using (writer.ConfigureAwait(false))
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
                var stat = PathStat.Of(path);
                switch (stat.Kind)
                {
                    case PathKind.Missing:
                        // Gone since it was listed.
                        skipped?.Invoke(path);
                        continue;
                    case PathKind.Directory:
                        await writer.WriteEntryAsync(Entry(TarEntryType.Directory, name + "/", stat), cancellationToken).ConfigureAwait(false);
                        dirs++;
                        var children = Directory.EnumerateFileSystemEntries(path).Select(System.IO.Path.GetFileName).ToList();
                        children.Sort(StringComparer.Ordinal);
                        for (var i = children.Count - 1; i >= 0; i--)
                        {
                            pending.Push((System.IO.Path.Join(path, children[i]), name + "/" + children[i]));
                        }

                        break;
                    case PathKind.Symlink:
                        var link = Entry(TarEntryType.SymbolicLink, name, stat);
                        link.LinkName = new FileInfo(path).LinkTarget ?? "";
                        await writer.WriteEntryAsync(link, cancellationToken).ConfigureAwait(false);
                        links++;
                        break;
                    case PathKind.File:
                        var entry = Entry(TarEntryType.RegularFile, name, stat);
                        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, FileOptions.SequentialScan);
                        await using (stream.ConfigureAwait(false))
                        {
                            var size = stream.Length;
                            entry.DataStream = new FixedLengthStream(stream, size);
                            await writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
                            bytes += size;
                        }

                        files++;
                        break;
                    default:
                        skipped?.Invoke(path);
                        break;
                }
            }
        }

        return new TransferSummary(files, dirs, links, bytes);
    }

    private static PaxTarEntry Entry(TarEntryType type, string name, PathStat stat) => new(type, name)
    {
        Mode = (UnixFileMode)stat.Mode,
        ModificationTime = stat.Mtime,
    };

    /// <summary>Exactly <c>length</c> bytes of the inner stream: cut if it grew, zero-padded if it shrank.</summary>
    private sealed class FixedLengthStream(Stream inner, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var want = (int)Math.Min(buffer.Length, length - _position);
            if (want <= 0)
            {
                return 0;
            }

            var n = inner.Read(buffer[..want]);
            if (n == 0)
            {
                buffer[..want].Clear();
                n = want;
            }

            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var want = (int)Math.Min(buffer.Length, length - _position);
            if (want <= 0)
            {
                return 0;
            }

            var n = await inner.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                buffer.Span[..want].Clear();
                n = want;
            }

            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => origin == SeekOrigin.Current && offset == 0 ? _position : throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
