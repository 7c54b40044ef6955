using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int AF_INET = 2;
    internal const int SOCK_DGRAM = 2;
    internal const int SOCK_CLOEXEC = 0x80000;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketNative(int domain, int type, int protocol);

    /// <summary>socket(2) as an owned handle (for interface ioctls).</summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle Socket(int domain, int type, int protocol)
    {
        var fd = Check(SocketNative(domain, type | SOCK_CLOEXEC, protocol), "socket");
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }
}
