using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    internal static unsafe partial nint Send(SafeFileHandle fd, byte* buf, nuint len, int flags);
}
