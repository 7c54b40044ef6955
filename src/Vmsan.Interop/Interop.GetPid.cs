using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "getpid", SetLastError = true)]
    internal static partial int GetPid();
}
