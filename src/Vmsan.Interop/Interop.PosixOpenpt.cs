using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int O_RDWR = 2;
    internal const int O_NOCTTY = 0x100;

    [LibraryImport(Lib, EntryPoint = "posix_openpt", SetLastError = true)]
    internal static partial int PosixOpenpt(int flags);
}
