using System.Buffers.Binary;
using CsCheck;
using Vmsan.Core.Processes;
using Vmsan.Images.Ext4;

namespace Vmsan.UnitTests.Images;

/// <summary>
/// The size of an image's root filesystem: never below the minimum (the default disk, so a default VM has
/// nothing to grow at boot), always room for the content, and sparse on the host. The build runs the real
/// mkfs.ext4 on a small tree inside the test's own temp directory.
/// </summary>
public sealed class Ext4BuilderTests : IDisposable
{
    private const long MiB = Ext4Builder.MiB;
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-ext4-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Size_is_whole_MiB_holds_the_content_with_headroom_and_is_at_least_the_minimum() =>
        Gen.Select(Gen.Long[0, 64L * 1024 * MiB], Gen.Long[0, 16L * 1024 * MiB]).Sample((content, minimum) =>
        {
            var size = Ext4Builder.SizeFor(content, minimum);
            Assert.Equal(0, size % MiB);
            Assert.True(size >= minimum, $"{size} < minimum {minimum}");
            Assert.True(size >= content + content / 4 + 64 * MiB, $"{size} leaves no headroom over {content}");
            // No bigger than it needs to be: the larger of the two, rounded up to a MiB.
            Assert.True(size < Math.Max(content + content / 4 + 64 * MiB, minimum) + MiB);
        });

    [Theory]
    [InlineData(0, 65)]        // content-sized: 64 MiB headroom + the tree
    [InlineData(4096, 4096)]   // the default disk: the guest grows nothing at boot
    public async Task Built_filesystem_spans_the_image_and_the_file_stays_sparse(int minimumMib, int expectedMib)
    {
        var tree = Path.Combine(_dir, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "etc"));
        await File.WriteAllTextAsync(Path.Combine(tree, "etc", "hostname"), "ext4-test\n", TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(tree, "blob"), new byte[256 * 1024], TestContext.Current.CancellationToken);
        var image = Path.Combine(_dir, "rootfs.ext4");

        var (size, _) = await Ext4Builder.BuildAsync(CommandRunner.Instance, tree, image, minimumMib * MiB, TestContext.Current.CancellationToken);

        Assert.Equal(expectedMib * MiB, size);
        Assert.Equal(size, new FileInfo(image).Length);
        // The filesystem itself covers the whole file (what the agent compares with the disk at boot).
        var superblock = new byte[1024];
        await using (var fs = File.OpenRead(image))
        {
            fs.Position = 1024;
            fs.ReadExactly(superblock);
        }
        Assert.Equal(0xEF53, BinaryPrimitives.ReadUInt16LittleEndian(superblock.AsSpan(0x38)));
        var blockSize = 1024L << (int)BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x18));
        Assert.Equal(size, BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x04)) * blockSize);
        // Sparse: the unused part of a 4 GiB filesystem costs no host space (inode tables of the empty
        // groups are not written out as data).
        var allocated = long.Parse((await CommandRunner.Instance.RunCheckedAsync(Vmsan.Core.Errors.ErrorCode.Internal, "stat", ["-c", "%b", image],
            ct: TestContext.Current.CancellationToken)).Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
        Assert.True(allocated < 160 * MiB, $"{allocated / MiB} MiB allocated for a {size / MiB} MiB image");
    }
}
