using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const ulong BLKGETSIZE64 = 0x80081272;
    internal const ulong EXT4_IOC_RESIZE_FS = 0x40086610;
    internal const ulong SIOCGIFFLAGS = 0x8913;
    internal const ulong SIOCSIFFLAGS = 0x8914;

    /// <summary>_IOW('R', 0x03, int[2]): mix bytes into the input pool and credit them.</summary>
    internal const ulong RNDADDENTROPY = 0x40085203;

    /// <summary>_IO('R', 0x07): reseed the kernel's CRNG from the input pool now.</summary>
    internal const ulong RNDRESEEDCRNG = 0x5207;

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(int fd, ulong request, void* argument);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(Microsoft.Win32.SafeHandles.SafeFileHandle fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(Microsoft.Win32.SafeHandles.SafeFileHandle fd, nuint request, nuint arg);
}
