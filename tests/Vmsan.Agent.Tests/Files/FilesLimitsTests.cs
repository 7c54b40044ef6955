using System.Formats.Tar;
using System.Security.Cryptography;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Tests.Files;

/// <summary>Body size and concurrency limits (each test starts its own agent with the limit it needs), and large streamed files.</summary>
public sealed class FilesLimitsTests
{
    private const int Timeout = 120_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static MemoryStream OneFile(int size)
    {
        var archive = new MemoryStream();
        using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "f.bin") { DataStream = new MemoryStream(new byte[size]) });
        }

        archive.Position = 0;
        return archive;
    }

    [Fact(Timeout = Timeout)]
    public async Task An_upload_over_the_body_limit_is_413_whether_its_length_is_known_or_not()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_FILES_MAX_UPLOAD_BYTES"] = "100000" });
        using var client = agent.CreateClient();
        using var dir = new TempDir();
        using var source = new TempDir();
        File.WriteAllBytes(source["big.bin"], new byte[300_000]);

        var known = await Assert.ThrowsAsync<AgentException>(() => client.UploadTarAsync(dir.Path, OneFile(300_000), "root", Ct));
        var chunked = await Assert.ThrowsAsync<AgentException>(() => client.UploadAsync(dir.Path, [new TarSource(source["big.bin"], "big.bin")], "root", Ct));

        Assert.Equal(AgentErrorCodes.PayloadTooLarge, known.Code);
        Assert.Equal(AgentErrorCodes.PayloadTooLarge, chunked.Code);
        Assert.Empty(dir.List());
        await client.UploadTarAsync(dir.Path, OneFile(1000), "root", Ct);
        Assert.Equal(["f.bin"], dir.List());
    }

    [Fact(Timeout = Timeout)]
    public async Task Transfers_over_the_concurrency_limit_are_429_and_the_slot_frees_afterwards()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_FILES_MAX_TRANSFERS"] = "1" });
        using var client = agent.CreateClient();
        using var dir = new TempDir();
        var gate = new TaskCompletionSource();
        var slow = client.UploadTarAsync(dir.Path, new GatedStream(OneFile(1000).ToArray(), gate.Task), "root", Ct);
        await Task.Delay(500, Ct);

        var refused = await Assert.ThrowsAsync<AgentException>(() => client.DownloadTarAsync(dir.Path, Stream.Null, "root", Ct));
        gate.SetResult();
        await slow;

        Assert.Equal(FilesProtocol.Errors.TooManyTransfers, refused.Code);
        Assert.True(await client.DownloadTarAsync(dir.Path, Stream.Null, "root", Ct) > 0);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_100_MiB_file_goes_up_and_down_byte_exact_without_the_agent_holding_it()
    {
        await using var agent = await AgentProcess.StartAsync();
        using var client = agent.CreateClient();
        using var local = new TempDir();
        using var remote = new TempDir();
        var data = new byte[1 << 20];
        using (var f = File.Create(local["big.bin"]))
        {
            for (var i = 0; i < 100; i++)
            {
                RandomNumberGenerator.Fill(data);
                f.Write(data);
            }
        }

        await client.HealthAsync(Ct);
        var rssBefore = Rss(agent.Pid, "VmRSS");

        await client.UploadAsync(remote.Path, [new TarSource(local["big.bin"], "big.bin")], "root", Ct);
        await client.DownloadAsync(remote["big.bin"], local["back.bin"], "root", Ct);

        var growth = Rss(agent.Pid, "VmHWM") - rssBefore;
        Assert.True(growth < 48 << 20, $"agent peak RSS grew by {growth >> 20} MiB");
        Assert.Equal(Hash(local["big.bin"]), Hash(remote["big.bin"]));
        Assert.Equal(Hash(local["big.bin"]), Hash(local["back.bin"]));
    }

    [Fact(Timeout = 600_000)]
    public async Task A_sparse_9_GiB_file_goes_up_and_down_byte_exact_and_stays_sparse()
    {
        // Over 8 GiB: the size only fits in a PAX header (the ustar field says 0), so every reader on the way must take it from there.
        await using var agent = await AgentProcess.StartAsync();
        using var client = agent.CreateClient();
        using var local = new TempDir();
        using var remote = new TempDir();
        const long size = 9L << 30;
        var head = RandomNumberGenerator.GetBytes(1 << 20);
        var tail = RandomNumberGenerator.GetBytes(4096 + 123);
        using (var f = new FileStream(local["big.bin"], FileMode.CreateNew))
        {
            f.Write(head);
            f.Position = size - tail.Length;
            f.Write(tail);
        }

        await client.UploadAsync(remote.Path, [new TarSource(local["big.bin"], "big.bin")], "root", Ct);
        Assert.Equal(size, new FileInfo(remote["big.bin"]).Length);
        await client.DownloadAsync(remote["big.bin"], local["back.bin"], "root", Ct);

        Assert.Equal(size, new FileInfo(local["back.bin"]).Length);
        var expected = Hash(local["big.bin"]);
        Assert.Equal(expected, Hash(remote["big.bin"]));
        Assert.Equal(expected, Hash(local["back.bin"]));
        // Holes stay holes: the extractor does not write 9 GiB of zeros to disk.
        Assert.True(AllocatedBytes(remote["big.bin"]) < 64 << 20, $"{AllocatedBytes(remote["big.bin"])} bytes allocated after the upload");
        Assert.True(AllocatedBytes(local["back.bin"]) < 64 << 20, $"{AllocatedBytes(local["back.bin"])} bytes allocated after the download");
    }

    /// <summary>Disk space the file really uses (stat's st_blocks, 512-byte units).</summary>
    private static long AllocatedBytes(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b", path]) { RedirectStandardOutput = true })!;
        var output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
    }

    private static string Hash(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(f));
    }

    private static long Rss(int pid, string field) =>
        long.Parse(File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;

    /// <summary>Yields nothing until the gate opens, then the archive.</summary>
    private sealed class GatedStream(byte[] content, Task gate) : ForwardOnlyStream
    {
        private int _position;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await gate.WaitAsync(cancellationToken);
            var n = Math.Min(buffer.Length, content.Length - _position);
            content.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

    }
}
