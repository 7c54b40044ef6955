using System.Text;

namespace Vmsan.Boot;

/// <summary>
/// Writes the "newc" cpio format the kernel unpacks into the initramfs. The per-VM config travels
/// as a tiny archive appended to the shared base initrd; the kernel unpacks concatenated archives
/// in order, as long as each starts on a 4-byte boundary.
/// </summary>
internal sealed class NewcArchive
{
    private readonly MemoryStream _out = new();
    private uint _ino = 1;

    public void AddDirectory(string name, uint mode = 0x1ED /* 0755 */) => AddEntry(name, 0x4000 | mode, []);

    public void AddFile(string name, ReadOnlySpan<byte> data, uint mode = 0x180 /* 0600 */) => AddEntry(name, 0x8000 | mode, data);

    private void AddEntry(string name, uint mode, ReadOnlySpan<byte> data)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        var header = new StringBuilder("070701");
        uint[] fields =
        [
            _ino++, mode, 0 /* uid */, 0 /* gid */, (mode & 0x4000) != 0 ? 2u : 1u, 0 /* mtime */,
            (uint)data.Length, 0, 0, 0, 0, (uint)nameBytes.Length, 0 /* check */,
        ];
        foreach (var f in fields)
            header.Append(f.ToString("x8", System.Globalization.CultureInfo.InvariantCulture));
        _out.Write(Encoding.ASCII.GetBytes(header.ToString()));
        _out.Write(nameBytes);
        Pad();
        _out.Write(data);
        Pad();
    }

    private void Pad()
    {
        while (_out.Length % 4 != 0)
            _out.WriteByte(0);
    }

    public byte[] Finish()
    {
        AddEntry("TRAILER!!!", 0, []);
        return _out.ToArray();
    }
}
