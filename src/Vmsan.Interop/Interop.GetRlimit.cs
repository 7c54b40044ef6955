using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "getrlimit", SetLastError = true)]
    internal static partial int GetRlimit(int resource, out RLimit limit);
}
