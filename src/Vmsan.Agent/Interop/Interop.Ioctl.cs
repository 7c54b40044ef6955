using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const ulong BLKGETSIZE64 = 0x80081272;
    internal const ulong EXT4_IOC_RESIZE_FS = 0x40086610;
    internal const ulong SIOCGIFFLAGS = 0x8913;
    internal const ulong SIOCSIFFLAGS = 0x8914;

    /// <summary>_IOW('R', 0x03, int[2]): mix bytes into the input pool and credit them.</summary>
    internal const ulong RNDADDENTROPY = 0x40085203;

    /// <summary>_IO('R', 0x07): reseed the kernel's CRNG from the input pool now.</summary>
    internal const ulong RNDRESEEDCRNG = 0x5207;

    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(int fd, ulong request, void* argument);
}
