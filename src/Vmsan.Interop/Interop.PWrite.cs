using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "pwrite64", SetLastError = true)]
    internal static unsafe partial nint PWrite(int fd, byte* buffer, nuint count, long offset);
}
