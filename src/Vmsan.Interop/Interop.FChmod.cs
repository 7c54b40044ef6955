using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "fchmod", SetLastError = true)]
    internal static partial int FChmod(int fd, int mode);
}
