using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "grantpt", SetLastError = true)]
    internal static partial int Grantpt(int fd);
}
