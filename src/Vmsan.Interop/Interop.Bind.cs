using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>struct sockaddr_nl: family, pad, port id (0: the kernel picks), multicast groups.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockaddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeFileHandle fd, SockaddrNl* addr, int addrlen);
}
