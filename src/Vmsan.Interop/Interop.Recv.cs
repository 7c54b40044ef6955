using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int ENOBUFS = 105;

    [LibraryImport(Lib, EntryPoint = "recv", SetLastError = true)]
    internal static unsafe partial nint Recv(SafeFileHandle fd, byte* buf, nuint len, int flags);
}
