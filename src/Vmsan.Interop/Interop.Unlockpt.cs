using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "unlockpt", SetLastError = true)]
    internal static partial int Unlockpt(int fd);
}
