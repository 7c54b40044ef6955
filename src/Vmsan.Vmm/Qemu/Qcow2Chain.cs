using System.Buffers.Binary;
using System.Text;

namespace Vmsan.Vmm.Qemu;

/// <summary>
/// The backing chain of a qcow2 image, read from the headers themselves (no qemu-img process): every file QEMU
/// opens for one <c>-drive</c>. A chrooted VMM must find each of them inside its jail, because QEMU 7.2 reopens
/// images by path whenever a node's access mode changes (migration's end, <c>cont</c>, a disk freeze).
/// </summary>
public static class Qcow2Chain
{
    /// <summary>"QFI\xfb": the first four bytes of every qcow2 image.</summary>
    public const uint Magic = 0x514649fb;

    private const int HeaderBytes = 20;
    private const int MaxBackingName = 1023; // QEMU's own limit (PATH_MAX-ish bound on backing_file_size)

    /// <summary>
    /// The backing file name stored in a qcow2 header, as written (relative names are relative to the image's
    /// directory); null when the image has none or <paramref name="header"/> is not qcow2.
    /// </summary>
    /// <param name="header">The image's first bytes (at least the backing name's end; 64 KiB is plenty).</param>
    public static string? BackingName(ReadOnlySpan<byte> header)
    {
        if (header.Length < HeaderBytes || BinaryPrimitives.ReadUInt32BigEndian(header) != Magic)
            return null;
        var offset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        var size = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (offset == 0 || size == 0 || size > MaxBackingName || offset > (ulong)header.Length || offset + size > (ulong)header.Length)
            return null;
        return Encoding.UTF8.GetString(header.Slice((int)offset, (int)size));
    }

    /// <summary>Where a backing name points, seen from the image that names it.</summary>
    public static string Resolve(string image, string backingName) =>
        Path.IsPathRooted(backingName) ? Path.GetFullPath(backingName) : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(image)!, backingName));

    /// <summary>Every file of <paramref name="top"/>'s chain, top first, down to the first image with no backing (or not qcow2).</summary>
    public static IReadOnlyList<string> Files(string top)
    {
        var chain = new List<string>();
        var current = Path.GetFullPath(top);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            if (chain.Contains(current) || chain.Count > 64)
                throw new IOException($"The backing chain of {top} loops or is deeper than 64 images.");
            chain.Add(current);
            int read;
            using (var f = new FileStream(current, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                read = f.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            if (BackingName(buffer.AsSpan(0, read)) is not { } next)
                return chain;
            current = Resolve(current, next);
        }
    }
}
