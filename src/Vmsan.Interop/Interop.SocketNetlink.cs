using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int AF_NETLINK = 16;
    internal const int SOCK_RAW = 3;
    internal const int NETLINK_NETFILTER = 12;

    // System.Net.Sockets has no AF_NETLINK: the nfnetlink_log socket is a plain fd (closed by
    // SafeFileHandle's close(2)).
    /// <summary>socket(2) as an owned handle, invalid (errno kept) when it failed.</summary>
    internal static SafeFileHandle SocketHandle(int domain, int type, int protocol) =>
        new(SocketNative(domain, type, protocol), ownsHandle: true);
}
