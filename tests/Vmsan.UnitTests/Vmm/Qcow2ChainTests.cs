using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using CsCheck;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

public sealed class Qcow2ChainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qcow2-chain-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static void QemuImg(params string[] args)
    {
        var psi = new ProcessStartInfo("qemu-img") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }

    [Fact]
    public void A_chain_made_by_qemu_img_is_read_top_first_with_relative_names_resolved_beside_each_image()
    {
        var raw = Path.Combine(_dir, "base.ext4");
        File.WriteAllBytes(raw, new byte[1 << 20]);
        var sub = Directory.CreateDirectory(Path.Combine(_dir, "vm")).FullName;
        QemuImg("create", "-q", "-f", "qcow2", "-F", "raw", "-b", raw, Path.Combine(sub, "disk.qcow2"), "4M");
        // Relative backing name, as a disk freeze writes it: resolved from the image's own directory.
        QemuImg("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "disk.qcow2", Path.Combine(sub, "disk-snap-1.qcow2"), "4M");
        var chain = Qcow2Chain.Files(Path.Combine(sub, "disk-snap-1.qcow2"));
        Assert.Equal([Path.Combine(sub, "disk-snap-1.qcow2"), Path.Combine(sub, "disk.qcow2"), raw], chain);
    }

    [Fact]
    public void An_image_without_backing_is_a_chain_of_one() 
    {
        var img = Path.Combine(_dir, "solo.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", img, "1M");
        Assert.Equal([img], Qcow2Chain.Files(img));
    }

    [Fact]
    public void A_chain_that_loops_is_an_error_not_a_hang()
    {
        var a = Path.Combine(_dir, "a.qcow2");
        var b = Path.Combine(_dir, "b.qcow2");
        QemuImg("create", "-q", "-f", "qcow2", a, "1M");
        QemuImg("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "a.qcow2", b, "1M");
        QemuImg("rebase", "-q", "-u", "-f", "qcow2", "-F", "qcow2", "-b", "b.qcow2", a);
        Assert.Throws<IOException>(() => Qcow2Chain.Files(b));
    }

    private static byte[] Header(string? backing, int pad)
    {
        var name = backing is null ? [] : Encoding.UTF8.GetBytes(backing);
        var bytes = new byte[104 + pad + name.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, Qcow2Chain.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), 3);
        if (backing is not null)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), (ulong)(104 + pad));
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), (uint)name.Length);
            name.CopyTo(bytes, 104 + pad);
        }
        return bytes;
    }

    [Fact]
    public void Backing_names_round_trip_through_a_header() =>
        Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 1, 200], Gen.Int[0, 300]).Sample((name, pad) =>
            Assert.Equal(name, Qcow2Chain.BackingName(Header(name, pad))));

    [Fact]
    public void Arbitrary_bytes_never_throw_and_non_qcow2_has_no_backing()
    {
        Gen.Byte.Array[0, 300].Sample(bytes =>
        {
            var name = Qcow2Chain.BackingName(bytes);
            if (bytes.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(bytes) != Qcow2Chain.Magic)
                Assert.Null(name);
        });
        // A header whose name runs past the bytes given, or with no name, names nothing.
        var cut = Header("abc", 0);
        Assert.Null(Qcow2Chain.BackingName(cut.AsSpan(0, cut.Length - 1)));
        Assert.Null(Qcow2Chain.BackingName(Header(null, 0)));
    }
}
