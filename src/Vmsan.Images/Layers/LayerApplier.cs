using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using Vmsan.Images.Model;

namespace Vmsan.Images.Layers;

/// <summary>
/// Applies image layers (tar streams) to a directory, in order, like an overlay filesystem would
/// show them: <c>.wh.NAME</c> deletes NAME of the layers below, <c>.wh..wh..opq</c> empties its
/// directory of them; hard links, symlinks, device nodes, FIFOs, ownership, modes (with setuid
/// bits), mtimes and extended attributes are kept. Runs as root so ownership can be set.
/// Every path is resolved inside the root (a symlink in the image pointing to <c>/etc</c> means
/// the image's /etc, never the host's), and names with <c>..</c> that climb out are refused.
/// </summary>
public sealed class LayerApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";
    private readonly string _root;
    // Paths (relative, resolved) this layer created: an opaque marker keeps them.
    private readonly HashSet<string> _createdThisLayer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _resolved = new(StringComparer.Ordinal);

    public LayerApplier(string root)
    {
        _root = Path.GetFullPath(root).TrimEnd('/');
        Directory.CreateDirectory(_root);
    }

    public long Entries { get; private set; }

    /// <summary>Decompresses <paramref name="blob"/> as <paramref name="compression"/> and applies it.</summary>
    public void Apply(Stream blob, LayerCompression compression, string what)
    {
        Stream tar = compression switch
        {
            LayerCompression.Gzip => new GZipStream(blob, CompressionMode.Decompress, leaveOpen: true),
            LayerCompression.Zstd => new ZstdSharp.DecompressionStream(blob, leaveOpen: true),
            LayerCompression.None => blob,
            _ => throw ImageErrors.Bad($"{what}: unknown layer compression."),
        };
        try
        {
            ApplyTar(tar, what);
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException or ZstdSharp.ZstdException)
        {
            throw ImageErrors.Bad($"{what}: the layer is not a readable tar ({ex.Message}).", ex);
        }
        finally
        {
            if (!ReferenceEquals(tar, blob))
                tar.Dispose();
        }
    }

    private void ApplyTar(Stream tar, string what)
    {
        _createdThisLayer.Clear();
        _resolved.Clear();
        using var reader = new TarReader(tar, leaveOpen: true);
        while (reader.GetNextEntry(copyData: false) is { } entry)
        {
            Entries++;
            if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
                continue;
            var rel = Normalize(entry.Name, what);
            if (rel.Length == 0)
            {
                if (entry.EntryType == TarEntryType.Directory)
                    SetMeta(_root, entry, isLink: false);
                continue;
            }
            var slash = rel.LastIndexOf('/');
            var parentRel = slash < 0 ? "" : rel[..slash];
            var name = rel[(slash + 1)..];
            var parent = ResolveDir(parentRel, create: true, what);
            var parentFull = Full(parent);
            if (name == OpaqueMarker)
            {
                foreach (var child in Directory.EnumerateFileSystemEntries(parentFull))
                    if (!_createdThisLayer.Contains(Join(parent, Path.GetFileName(child))))
                        Remove(child);
                _resolved.Clear();
                continue;
            }
            if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
            {
                var victim = name[WhiteoutPrefix.Length..];
                if (victim is "" or "." or "..")
                    throw ImageErrors.Bad($"{what}: bad whiteout '{entry.Name}'.");
                Remove(Path.Combine(parentFull, victim));
                _resolved.Clear();
                continue;
            }
            var target = Join(parent, name);
            var full = Full(target);
            _createdThisLayer.Add(target);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (!IsRealDirectory(full))
                    {
                        Remove(full);
                        Directory.CreateDirectory(full);
                    }
                    SetMeta(full, entry, isLink: false);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    Remove(full);
                    using (var fs = new FileStream(full, new FileStreamOptions
                           {
                               Mode = FileMode.CreateNew,
                               Access = FileAccess.Write,
                               UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                           }))
                        entry.DataStream?.CopyTo(fs, 1 << 17);
                    SetMeta(full, entry, isLink: false);
                    break;
                case TarEntryType.SymbolicLink:
                    Remove(full);
                    File.CreateSymbolicLink(full, entry.LinkName);
                    SetMeta(full, entry, isLink: true);
                    _resolved.Clear();
                    break;
                case TarEntryType.HardLink:
                {
                    var linkRel = Normalize(entry.LinkName, what);
                    var ls = linkRel.LastIndexOf('/');
                    var existing = Full(Join(ResolveDir(ls < 0 ? "" : linkRel[..ls], create: false, what), linkRel[(ls + 1)..]));
                    if (!File.Exists(existing) && new FileInfo(existing).LinkTarget is null)
                        throw ImageErrors.Bad($"{what}: hard link '{entry.Name}' points to '{entry.LinkName}', which does not exist.");
                    if (existing == full)
                        break;
                    Remove(full);
                    if (Libc.Link(existing, full) != 0)
                        throw new IOException($"link({existing}, {full}) failed: errno {Marshal.GetLastPInvokeError()}");
                    break;
                }
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                {
                    Remove(full);
                    var type = entry.EntryType switch
                    {
                        TarEntryType.CharacterDevice => Libc.S_IFCHR,
                        TarEntryType.BlockDevice => Libc.S_IFBLK,
                        _ => Libc.S_IFIFO,
                    };
                    var dev = entry.EntryType == TarEntryType.Fifo ? 0 : entry is PosixTarEntry px ? Libc.MakeDev((uint)px.DeviceMajor, (uint)px.DeviceMinor) : 0;
                    if (Libc.Mknod(full, type | 0x180, dev) != 0)
                        throw new IOException($"mknod({full}) failed: errno {Marshal.GetLastPInvokeError()}");
                    SetMeta(full, entry, isLink: false);
                    break;
                }
                default:
                    // Sparse files and other GNU oddities do not occur in images built by normal tools.
                    throw ImageErrors.Bad($"{what}: entry '{entry.Name}' has unsupported tar type {entry.EntryType}.");
            }
        }
    }

    private static bool IsRealDirectory(string full) => new FileInfo(full).LinkTarget is null && Directory.Exists(full);

    private string Full(string rel) => rel.Length == 0 ? _root : _root + "/" + rel;

    private static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "/" + name;

    /// <summary>A tar name as a relative path with no <c>.</c>, empty or <c>..</c> components; refuses names that climb out.</summary>
    internal static string Normalize(string name, string what)
    {
        var parts = new List<string>();
        foreach (var p in name.Split('/'))
        {
            if (p is "" or ".")
                continue;
            if (p == "..")
                throw ImageErrors.Bad($"{what}: entry '{name}' escapes the image root; refused.");
            if (p.Contains('\0', StringComparison.Ordinal))
                throw ImageErrors.Bad($"{what}: entry name with a NUL byte; refused.");
            parts.Add(p);
        }
        return string.Join('/', parts);
    }

    /// <summary>
    /// Resolves a directory path inside the root, following the image's own symlinks the way the
    /// guest will see them (absolute targets are relative to the root, <c>..</c> stops at the root).
    /// Missing directories are created when <paramref name="create"/>.
    /// </summary>
    private string ResolveDir(string rel, bool create, string what)
    {
        if (rel.Length == 0)
            return "";
        if (_resolved.TryGetValue(rel, out var cached))
            return cached;
        var stack = new List<string>();
        var pending = new LinkedList<string>(rel.Split('/'));
        var links = 0;
        while (pending.First is { } node)
        {
            var c = node.Value;
            pending.RemoveFirst();
            if (c is "" or ".")
                continue;
            if (c == "..")
            {
                if (stack.Count > 0)
                    stack.RemoveAt(stack.Count - 1);
                continue;
            }
            var candidate = _root + "/" + string.Join('/', stack.Append(c));
            var linkTarget = new FileInfo(candidate).LinkTarget;
            if (linkTarget is not null)
            {
                if (++links > 40)
                    throw ImageErrors.Bad($"{what}: too many symlinks resolving '{rel}'.");
                if (linkTarget.StartsWith('/'))
                    stack.Clear();
                foreach (var part in linkTarget.Split('/').Reverse())
                    pending.AddFirst(part);
                continue;
            }
            if (Directory.Exists(candidate))
            {
                stack.Add(c);
                continue;
            }
            if (File.Exists(candidate))
                throw ImageErrors.Bad($"{what}: '{rel}' goes through '{string.Join('/', stack.Append(c))}', which is not a directory.");
            if (!create)
                throw ImageErrors.Bad($"{what}: '{rel}' does not exist.");
            Directory.CreateDirectory(candidate);
            stack.Add(c);
        }
        var result = string.Join('/', stack);
        _resolved[rel] = result;
        return result;
    }

    private static void Remove(string full)
    {
        var fi = new FileInfo(full);
        if (fi.LinkTarget is not null || File.Exists(full))
            File.Delete(full);
        else if (Directory.Exists(full))
            Directory.Delete(full, recursive: true);
        else if (fi.Exists)
            File.Delete(full);
    }

    private static void SetMeta(string full, TarEntry entry, bool isLink)
    {
        if (Libc.Lchown(full, entry.Uid, entry.Gid) != 0)
            throw new IOException($"lchown({full}) failed: errno {Marshal.GetLastPInvokeError()}");
        if (!isLink)
            File.SetUnixFileMode(full, entry.Mode); // after chown: chown clears setuid/setgid
        if (entry is PaxTarEntry pax)
        {
            foreach (var (k, v) in pax.ExtendedAttributes)
            {
                if (!k.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                    continue;
                var name = k["SCHILY.xattr.".Length..];
                // ext4 keeps user.*, trusted.* and security.*; anything else (or a failure) is skipped.
                if (!(name.StartsWith("user.", StringComparison.Ordinal) || name.StartsWith("trusted.", StringComparison.Ordinal)
                      || name.StartsWith("security.", StringComparison.Ordinal)))
                    continue;
                var bytes = Encoding.UTF8.GetBytes(v);
                _ = Libc.Lsetxattr(full, name, bytes, (nuint)bytes.Length, 0);
            }
        }
        var t = entry.ModificationTime;
        Span<Libc.Timespec> times =
        [
            new() { Sec = t.ToUnixTimeSeconds(), Nsec = 0 },
            new() { Sec = t.ToUnixTimeSeconds(), Nsec = 0 },
        ];
        _ = Libc.Utimensat(Libc.AT_FDCWD, full, times, Libc.AT_SYMLINK_NOFOLLOW);
    }
}
