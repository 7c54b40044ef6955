using System.Text;
using Vmsan.Boot;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.Boot;

public class NewcArchiveTests
{
    [Fact]
    public async Task Cpio_extracts_the_files_and_directories_with_their_content_and_modes()
    {
        // Arrange
        using var tmp = new TempDir();
        var archive = new NewcArchive();
        archive.AddDirectory("vmsan", 0x1C0 /* 0700 */);
        archive.AddFile("vmsan/config", "VMSAN_ID=vm-1a2b3c4d\n"u8);
        archive.AddFile("vmsan/exe", "#!/bin/sh\n"u8, 0x1ED /* 0755 */);
        archive.AddFile("empty", []);

        // Act
        var (code, stderr) = await Cpio.ExtractAsync(archive.Finish(), tmp.Path);

        // Assert
        Assert.True(code == 0, stderr);
        Assert.Equal("VMSAN_ID=vm-1a2b3c4d\n", File.ReadAllText(tmp.Combine("vmsan", "config")));
        Assert.Equal("#!/bin/sh\n", File.ReadAllText(tmp.Combine("vmsan", "exe")));
        Assert.Equal(0, new FileInfo(tmp.Combine("empty")).Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tmp.Combine("vmsan", "config")));
        Assert.Equal((UnixFileMode)0x1ED, File.GetUnixFileMode(tmp.Combine("vmsan", "exe")));
        Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(tmp.Combine("vmsan")));
    }

    [Fact]
    public async Task Any_file_content_length_survives_a_cpio_round_trip()
    {
        // Arrange: lengths around every padding remainder.
        using var tmp = new TempDir();
        var archive = new NewcArchive();
        var contents = Enumerable.Range(0, 9).Select(n => Enumerable.Range(0, n).Select(i => (byte)('a' + i)).ToArray()).ToList();
        for (var n = 0; n < contents.Count; n++)
            archive.AddFile($"f{n}{new string('x', n)}", contents[n]);

        // Act
        var (code, stderr) = await Cpio.ExtractAsync(archive.Finish(), tmp.Path);

        // Assert
        Assert.True(code == 0, stderr);
        for (var n = 0; n < contents.Count; n++)
            Assert.Equal(contents[n], File.ReadAllBytes(tmp.Combine($"f{n}{new string('x', n)}")));
    }

    [Fact]
    public void The_archive_is_4_byte_aligned_and_ends_with_the_trailer()
    {
        var archive = new NewcArchive();
        archive.AddFile("a", "xyz"u8);

        var bytes = archive.Finish();

        Assert.Equal(0, bytes.Length % 4);
        Assert.StartsWith("070701", Encoding.ASCII.GetString(bytes, 0, 6), StringComparison.Ordinal);
        Assert.Contains("TRAILER!!!", Encoding.ASCII.GetString(bytes), StringComparison.Ordinal);
    }
}
