using System.Text;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Tests.Files;

/// <summary>A hostile archive (e.g. from a guest during a download) cannot make the reader buffer a huge PAX header.</summary>
public sealed class TarMetadataLimitTests
{
    /// <summary>A ustar header block with a valid checksum.</summary>
    private static byte[] Header(string name, char type, long size)
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
        h[156] = (byte)type;
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(h, 257);
        Array.Fill(h, (byte)' ', 148, 8);
        var sum = h.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }

    /// <summary>The header, then endless 'a' bytes; counts what was read.</summary>
    private sealed class EndlessArchive(byte[] header) : ForwardOnlyStream
    {
        public long Served { get; private set; }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var span = buffer.Span;
            for (var i = 0; i < span.Length; i++, Served++)
                span[i] = Served < header.Length ? header[Served] : (byte)'a';
            return ValueTask.FromResult(span.Length);
        }
    }

    [Theory]
    [InlineData('x')]
    [InlineData('g')]
    [InlineData('L')]
    [InlineData('K')]
    public async Task A_giant_metadata_entry_is_refused_before_it_is_read(char type)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["root"]);
        var source = new EndlessArchive(Header("PaxHeaders/x", type, 256L * 1024 * 1024));

        await Assert.ThrowsAsync<InvalidDataException>(() => new TarExtractor(dir["root"]).ExtractAsync(source, TestContext.Current.CancellationToken));

        Assert.True(source.Served < 2 * 1024 * 1024, $"read {source.Served} bytes of the hostile archive");
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["root"]));
    }

    [Fact]
    public async Task Ordinary_entries_of_any_size_pass_through_unbuffered()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["root"]);
        var data = new byte[3 * 1024 * 1024 + 17];
        Random.Shared.NextBytes(data);
        using var archive = new MemoryStream();
        archive.Write(Header("big.bin", '0', data.Length));
        archive.Write(data);
        archive.Write(new byte[512 - (data.Length % 512)]);
        archive.Write(new byte[1024]);
        archive.Position = 0;

        await new TarExtractor(dir["root"]).ExtractAsync(archive, TestContext.Current.CancellationToken);

        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(dir["root"], "big.bin"), TestContext.Current.CancellationToken));
    }
}
