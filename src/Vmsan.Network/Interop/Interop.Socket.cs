using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Network.Interop;

internal static partial class Libc
{
    internal const int AF_NETLINK = 16;
    internal const int SOCK_RAW = 3;
    internal const int SOCK_CLOEXEC = 0x80000;
    internal const int NETLINK_NETFILTER = 12;

    // System.Net.Sockets has no AF_NETLINK: the nfnetlink_log socket is a plain fd (closed by
    // SafeFileHandle's close(2)).
    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial SafeFileHandle Socket(int domain, int type, int protocol);
}
