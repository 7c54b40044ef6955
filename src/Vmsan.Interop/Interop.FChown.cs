using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "fchown", SetLastError = true)]
    internal static partial int FChown(int fd, int uid, int gid);
}
