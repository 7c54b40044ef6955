using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>ptsname_r(3): returns 0 or an errno value.</summary>
    [LibraryImport(Lib, EntryPoint = "ptsname_r", SetLastError = true)]
    internal static unsafe partial int PtsnameR(int fd, byte* buffer, nuint length);
}
