using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "pread64", SetLastError = true)]
    internal static unsafe partial nint PRead(int fd, byte* buffer, nuint count, long offset);
}
