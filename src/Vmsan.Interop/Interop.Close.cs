using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>close(2).</summary>
    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    internal static partial int CloseFd(int fd);
}
