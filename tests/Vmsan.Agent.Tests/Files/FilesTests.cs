using System.Formats.Tar;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Tests.Files;

public sealed class FilesTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 60_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DateTime OldTime = new(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);

    private static void BuildTree(string root)
    {
        Directory.CreateDirectory(Path.Join(root, "src/nested/deeper"));
        Directory.CreateDirectory(Path.Join(root, "src/empty"));
        File.WriteAllText(Path.Join(root, "src/hello.txt"), "hello\n");
        File.WriteAllBytes(Path.Join(root, "src/zero.bin"), []);
        File.WriteAllText(Path.Join(root, "src/nested/deeper/run.sh"), "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(Path.Join(root, "src/nested/deeper/run.sh"), (UnixFileMode)0b111_101_101);
        File.WriteAllText(Path.Join(root, "src/nested/ünïcødé-файл-文件.txt"), "unicode");
        File.WriteAllText(Path.Join(root, "src/nested", new string('n', 200)), "long name");
        File.CreateSymbolicLink(Path.Join(root, "src/link-to-hello"), "hello.txt");
        File.CreateSymbolicLink(Path.Join(root, "src/abs-link"), "/etc/hostname");
        File.SetLastWriteTimeUtc(Path.Join(root, "src/hello.txt"), OldTime);
        Directory.SetLastWriteTimeUtc(Path.Join(root, "src/nested/deeper"), OldTime);
    }

    private static void AssertSameTree(string expected, string actual)
    {
        var a = Directory.EnumerateFileSystemEntries(expected, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(expected, p)).Order().ToList();
        var b = Directory.EnumerateFileSystemEntries(actual, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(actual, p)).Order().ToList();
        Assert.Equal(a, b);
        foreach (var rel in a)
        {
            var (x, y) = (Path.Join(expected, rel), Path.Join(actual, rel));
            var (fx, fy) = (new FileInfo(x), new FileInfo(y));
            Assert.Equal(fx.LinkTarget, fy.LinkTarget);
            if (fx.LinkTarget is not null)
            {
                continue;
            }

            Assert.Equal(File.GetUnixFileMode(x), File.GetUnixFileMode(y));
            Assert.Equal(File.GetLastWriteTimeUtc(x), File.GetLastWriteTimeUtc(y));
            if (File.Exists(x))
            {
                Assert.Equal(File.ReadAllBytes(x), File.ReadAllBytes(y));
            }
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task I_can_upload_a_directory_and_download_it_back()
    {
        using var local = new TempDir();
        using var remote = new TempDir();
        using var back = new TempDir();
        BuildTree(local.Path);

        var up = await fixture.Client.UploadAsync(remote["work"], [new TarSource(local["src"], "src")], "root", Ct);
        var down = await fixture.Client.DownloadAsync(remote["work/src"], back.Path, "root", Ct);

        AssertSameTree(local["src"], remote["work/src"]);
        AssertSameTree(local["src"], back["src"]);
        Assert.Equal(5, up.Files);
        Assert.Equal(2, up.Symlinks);
        Assert.Equal(4, up.Directories);
        Assert.Equal(up, down);
    }

    [Fact(Timeout = Timeout)]
    public async Task Downloading_a_file_to_a_new_name_writes_that_name()
    {
        using var remote = new TempDir();
        using var back = new TempDir();
        File.WriteAllText(remote["a.txt"], "content");

        await fixture.Client.DownloadAsync(remote["a.txt"], back["renamed.txt"], "root", Ct);
        await fixture.Client.DownloadAsync(remote["a.txt"], back.Path, "root", Ct);

        Assert.Equal(["a.txt", "renamed.txt"], back.List());
        Assert.Equal("content", File.ReadAllText(back["renamed.txt"]));
    }

    [Fact(Timeout = Timeout)]
    public async Task Downloading_a_missing_path_is_PATH_NOT_FOUND()
    {
        using var back = new TempDir();

        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.DownloadAsync("/nonexistent/vmsan", back.Path, "root", Ct));

        Assert.Equal(FilesProtocol.Errors.PathNotFound, e.Code);
    }
}
