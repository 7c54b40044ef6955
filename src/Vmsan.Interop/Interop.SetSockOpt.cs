using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int SOL_SOCKET = 1;
    internal const int SO_RCVBUF = 8;
    internal const int SO_RCVTIMEO = 20;

    /// <summary>struct timeval on x86_64/arm64 (SO_RCVTIMEO).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Timeval
    {
        public long Sec;
        public long Usec;
    }

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int SetSockOpt(SafeFileHandle fd, int level, int name, void* value, uint length);
}
