using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "fstatfs64", SetLastError = true)]
    internal static unsafe partial int FStatFs(int fd, long* buffer);
}
