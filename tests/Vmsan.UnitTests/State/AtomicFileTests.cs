using System.Text;
using Vmsan.Core.State;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.State;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void Write_creates_the_directory_and_the_file_with_its_mode()
    {
        var path = _tmp.Combine("a", "b", "file.json");

        AtomicFile.Write(path, "{}"u8, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        Assert.Equal("{}", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Overwriting_replaces_the_whole_content()
    {
        var path = _tmp.Combine("file");
        AtomicFile.Write(path, "a much longer first version"u8, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        AtomicFile.Write(path, "short"u8, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        Assert.Equal("short", File.ReadAllText(path));
    }

    [Fact]
    public void Concurrent_writers_leave_one_complete_version_and_no_temp_files()
    {
        // Arrange
        var path = _tmp.Combine("state", "vm.json");
        var versions = Enumerable.Range(0, 8).Select(i => new string((char)('a' + i), 4096 + i)).ToArray();
        var stop = false;
        var torn = 0;
        var reader = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                try
                {
                    var text = File.ReadAllText(path);
                    if (!versions.Contains(text))
                        Interlocked.Increment(ref torn);
                }
                catch (FileNotFoundException)
                {
                }
                catch (DirectoryNotFoundException)
                {
                }
            }
        });
        reader.Start();

        // Act
        Parallel.For(0, versions.Length, i =>
        {
            for (var n = 0; n < 10; n++)
                AtomicFile.Write(path, Encoding.ASCII.GetBytes(versions[i]), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        });
        Volatile.Write(ref stop, true);
        reader.Join();

        // Assert
        Assert.Equal(0, torn);
        Assert.Contains(File.ReadAllText(path), versions);
        Assert.Equal(["vm.json"], Directory.GetFileSystemEntries(_tmp.Combine("state")).Select(Path.GetFileName));
    }
}
