using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "ftruncate64", SetLastError = true)]
    internal static partial int FTruncate(int fd, long length);
}
