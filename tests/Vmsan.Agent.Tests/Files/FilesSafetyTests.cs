using System.Formats.Tar;
using System.Security.Cryptography;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Tests.Files;

public sealed class FilesSafetyTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 60_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static MemoryStream Archive(params PaxTarEntry[] entries)
    {
        var archive = new MemoryStream();
        using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var e in entries)
            {
                writer.WriteEntry(e);
            }
        }

        archive.Position = 0;
        return archive;
    }

    private static PaxTarEntry FileEntry(string name, string content = "x") =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)), Mode = (UnixFileMode)0b110_100_100 };

    private static PaxTarEntry Link(TarEntryType type, string name, string target) => new(type, name) { LinkName = target };

    public static TheoryData<string, PaxTarEntry[]> UnsafeArchives => new()
    {
        { "dotdot", [FileEntry("ok.txt"), FileEntry("../escaped.txt")] },
        { "nested dotdot", [FileEntry("ok.txt"), FileEntry("a/../../escaped.txt")] },
        { "absolute", [FileEntry("ok.txt"), FileEntry("/tmp/vmsan-absolute-escape.txt")] },
        { "symlink escape", [FileEntry("ok.txt"), Link(TarEntryType.SymbolicLink, "esc", "../outside"), FileEntry("esc/escaped.txt")] },
        { "deep symlink escape", [FileEntry("ok.txt"), Link(TarEntryType.SymbolicLink, "d", ".."), FileEntry("d/outside/escaped.txt")] },
        { "char device", [FileEntry("ok.txt"), new PaxTarEntry(TarEntryType.CharacterDevice, "null") { DeviceMajor = 1, DeviceMinor = 3 }] },
        { "fifo", [FileEntry("ok.txt"), new PaxTarEntry(TarEntryType.Fifo, "fifo")] },
        { "hard link outside", [FileEntry("ok.txt"), Link(TarEntryType.HardLink, "h", "../outside/secret")] },
        { "hard link not in archive", [FileEntry("ok.txt"), Link(TarEntryType.HardLink, "h", "elsewhere")] },
    };

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(UnsafeArchives))]
    public async Task Unsafe_archives_are_refused_with_400_and_nothing_lands_outside(string why, PaxTarEntry[] entries)
    {
        using var sandbox = new TempDir();
        Directory.CreateDirectory(sandbox["outside"]);
        File.WriteAllText(sandbox["outside/secret"], "s");

        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.UploadTarAsync(sandbox["root"], Archive(entries), "root", Ct));

        Assert.True(e.Code is FilesProtocol.Errors.UnsafeEntry, $"{why}: {e.Code} {e.Message}");
        Assert.Equal(AgentErrorReason.BadRequest, e.Reason);
        Assert.Equal(["outside", "outside/secret", "root", "root/ok.txt"], sandbox.List().Where(p => p is not ("root/esc" or "root/d") && !p.StartsWith("root/esc/", StringComparison.Ordinal) && !p.StartsWith("root/d/", StringComparison.Ordinal)).ToList());
        Assert.False(File.Exists("/tmp/vmsan-absolute-escape.txt"));
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_symlink_inside_the_destination_may_be_written_through()
    {
        using var sandbox = new TempDir();

        await fixture.Client.UploadTarAsync(sandbox.Path,
            Archive(new PaxTarEntry(TarEntryType.Directory, "real"), Link(TarEntryType.SymbolicLink, "alias", "real"), FileEntry("alias/f.txt", "in")), "root", Ct);

        Assert.Equal("in", File.ReadAllText(sandbox["real/f.txt"]));
    }

    [Fact(Timeout = Timeout)]
    public async Task Garbage_is_a_bad_archive_and_the_agent_keeps_serving()
    {
        using var sandbox = new TempDir();
        var garbage = new MemoryStream(RandomNumberGenerator.GetBytes(4096));

        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.UploadTarAsync(sandbox.Path, garbage, "root", Ct));

        Assert.Equal(FilesProtocol.Errors.BadArchive, e.Code);
        Assert.Empty(sandbox.List());
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_tar_stream_cut_inside_an_entry_is_a_bad_archive_and_leaves_no_partial_file()
    {
        using var sandbox = new TempDir();
        // A well-framed request body that simply ends 5,000 bytes into an entry declared as 100,000 bytes long.
        var whole = Archive(FileEntry("done.txt"), new PaxTarEntry(TarEntryType.RegularFile, "cut.bin") { DataStream = new MemoryStream(RandomNumberGenerator.GetBytes(100_000)) }).ToArray();
        var headerEnd = whole.Length - 1024 - 100_000 - (512 - (100_000 % 512));
        var truncated = new MemoryStream(whole[..(headerEnd + 5_000)]);

        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.UploadTarAsync(sandbox.Path, truncated, "root", Ct));

        Assert.Equal(FilesProtocol.Errors.BadArchive, e.Code);
        Assert.Equal(["done.txt"], sandbox.List());
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task An_aborted_upload_leaves_no_partial_file_and_no_temporary()
    {
        using var sandbox = new TempDir();
        // A complete small file, then a header promising 8 MiB, 1 MiB of data, and the client goes away.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var body = new AbortingStream(Archive(FileEntry("done.txt")).ToArray()[..^1024], 8L << 20, 1 << 20, cts);

        await Assert.ThrowsAnyAsync<Exception>(() => fixture.Client.UploadTarAsync(sandbox.Path, body, "root", cts.Token));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (sandbox.List().Any(p => p.Contains(".vmsan-tmp-", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
        }

        Assert.Equal(["done.txt"], sandbox.List());
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task Uploads_need_the_token()
    {
        using var sandbox = new TempDir();
        using var anonymous = fixture.Agent.CreateClient(token: null);
        using var wrong = fixture.Agent.CreateClient("wrong");

        var missing = await Assert.ThrowsAsync<AgentException>(() => anonymous.UploadTarAsync(sandbox.Path, Archive(FileEntry("a")), "root", Ct));
        var forbidden = await Assert.ThrowsAsync<AgentException>(() => wrong.DownloadTarAsync(sandbox.Path, Stream.Null, "root", Ct));

        Assert.Equal(AgentErrorReason.Unauthorized, missing.Reason);
        Assert.Equal(AgentErrorReason.Forbidden, forbidden.Reason);
        Assert.Empty(sandbox.List());
    }

    [Fact(Timeout = Timeout)]
    public async Task Files_belong_to_the_requested_user()
    {
        using var sandbox = new TempDir();

        await fixture.Client.UploadTarAsync(sandbox["dst"], Archive(FileEntry("sub/f.txt")), "nobody", Ct);

        foreach (var p in new[] { "dst", "dst/sub", "dst/sub/f.txt" })
        {
            Assert.Equal(65534, Owner(sandbox[p]));
        }

        var unknown = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.UploadTarAsync(sandbox.Path, Archive(FileEntry("a")), "no-such-user", Ct));
        Assert.Equal(AgentErrorCodes.UserNotFound, unknown.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task Downloads_read_as_the_requested_user()
    {
        using var sandbox = new TempDir();
        File.WriteAllText(sandbox["secret.txt"], "s");
        File.SetUnixFileMode(sandbox["secret.txt"], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(sandbox["open.txt"], "o");
        File.SetUnixFileMode(sandbox["open.txt"], (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(sandbox.Path, (UnixFileMode)0b111_101_101);

        var shadow = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.DownloadTarAsync("/etc/shadow", Stream.Null, "nobody", Ct));
        var secret = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.DownloadTarAsync(sandbox["secret.txt"], Stream.Null, "nobody", Ct));
        using var tree = new MemoryStream();
        await fixture.Client.DownloadTarAsync(sandbox.Path, tree, "nobody", Ct);

        Assert.Equal(FilesProtocol.Errors.PermissionDenied, shadow.Code);
        Assert.Equal(FilesProtocol.Errors.PermissionDenied, secret.Code);
        // In a directory, what the user cannot read is left out; the rest comes.
        tree.Position = 0;
        var names = new List<string>();
        using (var reader = new TarReader(tree))
        {
            while (reader.GetNextEntry() is { } e)
            {
                names.Add(e.Name);
            }
        }

        Assert.Contains(names, n => n.EndsWith("/open.txt", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.EndsWith("/secret.txt", StringComparison.Ordinal));
        // Root stays possible when asked for.
        Assert.True(await fixture.Client.DownloadTarAsync("/etc/shadow", Stream.Null, "root", Ct) > 0);
    }

    [Theory(Timeout = Timeout)]
    [InlineData("/proc/self/status")]
    [InlineData("/sys/kernel/mm/transparent_hugepage/enabled")]
    [InlineData("/dev/null")]
    [InlineData("/dev/zero")]
    public async Task Downloading_a_device_or_a_pseudo_file_is_refused_at_once(string path)
    {
        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.DownloadTarAsync(path, Stream.Null, "root", Ct));

        Assert.Equal(FilesProtocol.Errors.UnsupportedFile, e.Code);
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    private static int Owner(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var s = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return int.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Sends a prefix, then a tar header for a large file, some data, then cancels (the connection is dropped).</summary>
    private sealed class AbortingStream(byte[] prefix, long declared, long sendBeforeAbort, CancellationTokenSource abort) : ForwardOnlyStream
    {
        private readonly byte[] _header = MakeHeader(declared);
        private long _sent;

        private static byte[] MakeHeader(long size)
        {
            var ms = new MemoryStream();
            using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "big.bin") { DataStream = new ZeroStream(size) });
            }

            // Only the header blocks (PAX extended header + ustar header), not the zeros.
            return ms.ToArray()[..(int)(ms.Length - size - 1024 - (512 - size % 512) % 512)];
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var all = prefix.Length + _header.Length;
            if (_sent < all)
            {
                var src = prefix.Concat(_header).Skip((int)_sent).Take(buffer.Length).ToArray();
                src.CopyTo(buffer);
                _sent += src.Length;
                return src.Length;
            }

            if (_sent - all >= sendBeforeAbort)
            {
                await Task.Delay(200, cancellationToken);
                await abort.CancelAsync();
                await Task.Delay(System.Threading.Timeout.Infinite, abort.Token);
            }

            var n = (int)Math.Min(buffer.Length, 64 * 1024);
            buffer.Span[..n].Fill(7);
            _sent += n;
            return n;
        }

    }
}

/// <summary>N zero bytes, never materialized.</summary>
public sealed class ZeroStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get => _position; set => _position = value; }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = (int)Math.Min(count, length - _position);
        if (n <= 0)
        {
            return 0;
        }

        Array.Clear(buffer, offset, n);
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => length + offset,
    };

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
