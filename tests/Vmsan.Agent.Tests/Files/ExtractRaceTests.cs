using System.Formats.Tar;
using System.Runtime.InteropServices;
using Vmsan.Agent.Client;

namespace Vmsan.Agent.Tests.Files;

/// <summary>
/// Issue 11: a hostile process swapping a directory of the destination for a symlink to elsewhere while uploads run
/// (renameat2 RENAME_EXCHANGE in a tight loop: at every instant one of the two is at the name) must never make an
/// upload, running as root, write outside the destination.
/// </summary>
public sealed partial class ExtractRaceTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;

    [Fact(Timeout = 120_000)]
    public async Task Swapping_a_directory_and_a_symlink_during_1000_uploads_never_lands_a_byte_outside()
    {
        using var sandbox = new TempDir();
        Directory.CreateDirectory(sandbox["outside"]);
        Directory.CreateDirectory(sandbox["root/d"]);
        File.CreateSymbolicLink(sandbox["root/x"], "../outside");
        using var stop = new CancellationTokenSource();
        long swaps = 0;
        var swapper = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (RenameAt2(AtFdCwd, sandbox["root/d"], AtFdCwd, sandbox["root/x"], RenameExchange) == 0)
                {
                    swaps++;
                }
            }
        }, TaskCreationOptions.LongRunning);

        int ok = 0, refused = 0;
        try
        {
            for (var i = 0; i < 1000; i++)
            {
                var archive = new MemoryStream();
                using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"d/f{i}.txt") { DataStream = new MemoryStream("x"u8.ToArray()) });
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"x/g{i}.txt") { DataStream = new MemoryStream("y"u8.ToArray()) });
                }

                archive.Position = 0;
                try
                {
                    await fixture.Client.UploadTarAsync(sandbox["root"], archive, "root", Ct);
                    ok++;
                }
                catch (AgentException)
                {
                    refused++;
                }
            }
        }
        finally
        {
            stop.Cancel();
            await swapper;
        }

        Assert.True(swaps > 1000, $"only {swaps} swaps");
        Assert.True(Directory.GetFileSystemEntries(sandbox["outside"]).Length == 0,
            $"{Directory.GetFileSystemEntries(sandbox["outside"]).Length} files landed outside ({ok} uploads succeeded, {refused} refused, {swaps} swaps)");
    }
}
