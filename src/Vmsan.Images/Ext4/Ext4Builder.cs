using Vmsan.Core.Errors;
using Vmsan.Core.Processes;

namespace Vmsan.Images.Ext4;

/// <summary>
/// Writes a directory tree into a new sparse ext4 image with <c>mkfs.ext4 -d</c>, sized to the content
/// plus headroom, and never smaller than a given minimum (the default disk).
/// </summary>
public static class Ext4Builder
{
    public const long MiB = 1024 * 1024;

    /// <summary>Blocks and inodes the tree needs (4 KiB blocks, each directory at least one block).</summary>
    public static (long Bytes, long Inodes) Measure(string root)
    {
        long bytes = 4096, inodes = 1;
        foreach (var info in new DirectoryInfo(root).EnumerateFileSystemInfos("*", new EnumerationOptions
                 {
                     RecurseSubdirectories = true,
                     AttributesToSkip = 0,
                     IgnoreInaccessible = false,
                 }))
        {
            inodes++;
            if (info is FileInfo f && f.LinkTarget is null)
                bytes += (f.Length + 4095) / 4096 * 4096;
            else
                bytes += 4096;
        }
        return (bytes, inodes);
    }

    /// <summary>
    /// The image size for a tree: content + 25 % + 64 MiB (journal, metadata, room to write before
    /// the guest grows the filesystem to a bigger disk), and at least <paramref name="minimumBytes"/>;
    /// whole MiB.
    /// </summary>
    /// <remarks>
    /// The minimum is the default disk size, as for the runtimes' images: a filesystem smaller than
    /// the disk is grown online by the agent at boot, and under emulation that growth (new block
    /// groups, their inode tables zeroed) costs the first exec of every VM ~0.4 s on its one vCPU.
    /// The file is sparse, so the unused part costs no space.
    /// </remarks>
    public static long SizeFor(long contentBytes, long minimumBytes)
    {
        var fit = (contentBytes + contentBytes / 4 + 64 * MiB + MiB - 1) / MiB * MiB;
        var min = (minimumBytes + MiB - 1) / MiB * MiB;
        return Math.Max(fit, min);
    }

    /// <summary>Writes <paramref name="tree"/> into <paramref name="output"/>; returns the image's size and the content's (one walk of the tree).</summary>
    public static async Task<(long Size, long ContentBytes)> BuildAsync(ICommandRunner runner, string tree, string output, long minimumBytes, CancellationToken ct)
    {
        var (bytes, inodes) = Measure(tree);
        var size = SizeFor(bytes, minimumBytes);
        await using (var fs = new FileStream(output, FileMode.CreateNew, FileAccess.Write))
            fs.SetLength(size);
        // lazy_*_init=0: written now, so the guest's ext4lazyinit never writes them into every
        // VM's overlay; -m 0: no root-reserved blocks; -N: room for every inode plus a margin.
        var inodeCount = Math.Max(inodes + inodes / 4 + 4096, size / (16 * 1024));
        await runner.RunCheckedAsync(ErrorCode.Internal, "mkfs.ext4",
            ["-q", "-F", "-L", "vmsan-root", "-m", "0", "-N", inodeCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", tree, output], ct: ct).ConfigureAwait(false);
        return (size, bytes);
    }
}
