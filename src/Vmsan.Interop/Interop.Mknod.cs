using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const uint S_IFCHR = 0x2000;
    internal const uint S_IFBLK = 0x6000;
    internal const uint S_IFIFO = 0x1000;

    [LibraryImport(Lib, EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mknod(string path, uint mode, ulong dev);

    /// <summary>glibc's gnu_dev_makedev encoding.</summary>
    internal static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
}
