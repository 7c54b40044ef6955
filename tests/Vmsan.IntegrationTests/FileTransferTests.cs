using System.Security.Cryptography;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>Issue 3's upload/download stories through the real CLI against one real VM.</summary>
public sealed class FileTransferTests(FileTransferTests.Vm vm) : IClassFixture<FileTransferTests.Vm>, IDisposable
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; private set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Id = await World.CreateVm();
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private readonly string _local = Directory.CreateTempSubdirectory("vmsan-xfer-").FullName;

    private VmsanWorld W => vm.World;

    public void Dispose() => Directory.Delete(_local, true);

    [Fact]
    public async Task A_directory_and_a_file_upload_recursively_and_download_back_identical()
    {
        var src = Path.Combine(_local, "dir");
        Directory.CreateDirectory(Path.Combine(src, "nested", "empty"));
        await File.WriteAllTextAsync(Path.Combine(src, "nested", "a.txt"), "alpha\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(src, "run.sh"), "#!/bin/sh\necho ran\n", TestContext.Current.CancellationToken);
        File.SetUnixFileMode(Path.Combine(src, "run.sh"), (UnixFileMode)0b111_101_101);
        File.SetLastWriteTimeUtc(Path.Combine(src, "nested", "a.txt"), new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        File.CreateSymbolicLink(Path.Combine(src, "link"), "nested/a.txt");
        var blob = Path.Combine(_local, "file.bin");
        await File.WriteAllBytesAsync(blob, RandomNumberGenerator.GetBytes(3_000_000), TestContext.Current.CancellationToken);

        var up = await W.Vmsan("upload", vm.Id, src, blob, "/home/user/work");
        Assert.True(up.ExitCode == 0, up.ToString());

        var check = await W.Vmsan("exec", vm.Id, "--", "sh", "-c",
            "cd /home/user/work && dir/run.sh && readlink dir/link && cat dir/link && stat -c '%U %Y' dir/nested/a.txt && test -d dir/nested/empty && sha256sum file.bin");
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains("ran\nnested/a.txt\nalpha\nuser 1577934245\n", check.Stdout);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(blob, TestContext.Current.CancellationToken))), check.Stdout);

        var outDir = Path.Combine(_local, "out");
        var down = await W.Vmsan("download", vm.Id, "/home/user/work", outDir);
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Equal("alpha\n", await File.ReadAllTextAsync(Path.Combine(outDir, "dir", "nested", "a.txt"), TestContext.Current.CancellationToken));
        Assert.Equal("nested/a.txt", new FileInfo(Path.Combine(outDir, "dir", "link")).LinkTarget);
        Assert.True((File.GetUnixFileMode(Path.Combine(outDir, "dir", "run.sh")) & UnixFileMode.UserExecute) != 0);
        Assert.Equal(await File.ReadAllBytesAsync(blob, TestContext.Current.CancellationToken),
            await File.ReadAllBytesAsync(Path.Combine(outDir, "file.bin"), TestContext.Current.CancellationToken));

        var single = Path.Combine(_local, "single.txt");
        var one = await W.Vmsan("download", vm.Id, "/home/user/work/dir/nested/a.txt", single);
        Assert.True(one.ExitCode == 0, one.ToString());
        Assert.Equal("alpha\n", await File.ReadAllTextAsync(single, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Downloads_read_as_the_user_and_proc_kcore_is_refused_at_once()
    {
        // Issue 11: downloads used to read as root whatever --user said, and /proc/kcore (128 TiB by stat) streamed forever.
        var shadow = await W.Vmsan("download", "-u", "user", vm.Id, "/etc/shadow", Path.Combine(_local, "shadow"));
        Assert.True(shadow.ExitCode != 0, shadow.ToString());
        Assert.Contains("PERMISSION_DENIED", shadow.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_local, "shadow")));
        var asRoot = await W.Vmsan("download", "-u", "root", vm.Id, "/etc/shadow", Path.Combine(_local, "shadow"));
        Assert.True(asRoot.ExitCode == 0, asRoot.ToString());

        var kcore = await W.VmsanWithTimeout(TimeSpan.FromSeconds(60), "download", "-u", "root", vm.Id, "/proc/kcore", Path.Combine(_local, "kcore"));
        Assert.True(kcore.ExitCode != 0, kcore.ToString());
        Assert.Contains("UNSUPPORTED_FILE", kcore.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_guest_swapping_a_directory_and_a_symlink_during_1000_uploads_never_gets_a_byte_outside()
    {
        // Issue 11: uploads (as root) used to check each parent directory and then open by path, so a guest process
        // swapping a directory for a symlink in between made the agent write outside the destination.
        var bin = Path.Combine(_local, "swapper");
        await Sh.Check($"gcc -static -O2 -o {bin} {Path.Combine(AppContext.BaseDirectory, "Infrastructure", "swapper.c")}");
        Assert.True((await W.Vmsan("upload", "-u", "root", vm.Id, bin, "/tmp")).ExitCode == 0);
        var setup = await W.Vmsan("exec", "-u", "root", vm.Id, "--", "sh", "-c", "mkdir -p /race/root/d /race/outside && ln -s ../outside /race/root/x");
        Assert.True(setup.ExitCode == 0, setup.ToString());
        var swapper = W.VmsanWithTimeout(TimeSpan.FromMinutes(3), "exec", "-u", "root", vm.Id, "--", "nice", "-n", "19", "/tmp/swapper", "120", "/race/root/d", "/race/root/x");
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);

        var client = new global::Vmsan.VmsanClient(new global::Vmsan.VmsanClientOptions
        {
            Home = W.Home,
            Assets = Environment.GetEnvironmentVariable("VMSAN_ASSETS") is { Length: > 0 } a ? a : "/var/lib/vmsan",
        });
        int ok = 0, refused = 0, next = -1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < 1000 && clock.Elapsed < TimeSpan.FromSeconds(100))
            {
                var tar = new MemoryStream();
                using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
                {
                    writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"d/f{i}") { DataStream = new MemoryStream("x"u8.ToArray()) });
                    writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, $"x/g{i}") { DataStream = new MemoryStream("y"u8.ToArray()) });
                }

                tar.Position = 0;
                try
                {
                    await client.UploadTarAsync(vm.Id, tar, "/race/root", "root", ct: TestContext.Current.CancellationToken);
                    Interlocked.Increment(ref ok);
                }
                catch (global::Vmsan.Errors.VmsanException)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }));
        // No procps in the base image: find it through /proc.
        var stopped = await W.Vmsan("exec", "-u", "root", vm.Id, "--", "sh", "-c",
            "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = swapper ] && kill -TERM ${p#/proc/}; done; true");
        Assert.True(stopped.ExitCode == 0, stopped.ToString());
        var swaps = await swapper;
        var outside = await W.Vmsan("exec", "-u", "root", vm.Id, "--", "sh", "-c", "ls -A /race/outside | wc -l");

        Assert.True(ok + refused >= 1000, $"only {ok + refused} uploads in {clock.Elapsed.TotalSeconds:0} s");
        Assert.True(swaps.ExitCode == 0 && swaps.Stdout.StartsWith("swaps ", StringComparison.Ordinal), swaps.ToString());
        Assert.True(long.Parse(swaps.Stdout[6..].Trim(), System.Globalization.CultureInfo.InvariantCulture) > 1000, swaps.Stdout);
        Assert.True(outside.Stdout.Trim() == "0", $"{outside.Stdout.Trim()} files landed outside ({ok} uploads succeeded, {refused} refused, {swaps.Stdout.Trim()})");
    }

    [Fact]
    public async Task Tar_streams_go_through_stdin_and_stdout()
    {
        var src = Path.Combine(_local, "t");
        Directory.CreateDirectory(src);
        await File.WriteAllTextAsync(Path.Combine(src, "one.txt"), "1", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(src, "two.txt"), "2", TestContext.Current.CancellationToken);
        var r = await Sh.Bash($"cd {src} && tar c . | VMSAN_HOME={W.Home} ip netns exec {W.HostNs} {VmsanWorld.Cli} upload {vm.Id} - /tmp/dst");
        Assert.True(r.ExitCode == 0, r.ToString());
        var list = await Sh.Bash($"VMSAN_HOME={W.Home} ip netns exec {W.HostNs} {VmsanWorld.Cli} download {vm.Id} /tmp/dst - | tar t | sort");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("one.txt", list.Stdout);
        Assert.Contains("two.txt", list.Stdout);
    }

    [Fact]
    public async Task Downloading_a_missing_path_fails_with_a_typed_error()
    {
        var r = await W.Vmsan("download", "--json", vm.Id, "/nonexistent/file", Path.Combine(_local, "x"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("\"code\"", r.Stdout);
        Assert.False(File.Exists(Path.Combine(_local, "x")));
    }
}
