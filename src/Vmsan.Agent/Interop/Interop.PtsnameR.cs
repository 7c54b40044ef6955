using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    /// <summary>ptsname_r(3): returns 0 or an errno value.</summary>
    [LibraryImport(Libc, EntryPoint = "ptsname_r", SetLastError = true)]
    internal static unsafe partial int PtsnameR(int fd, byte* buffer, nuint length);
}
