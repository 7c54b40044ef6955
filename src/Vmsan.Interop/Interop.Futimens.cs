using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "futimens", SetLastError = true)]
    internal static unsafe partial int Futimens(int fd, long* times);
}
