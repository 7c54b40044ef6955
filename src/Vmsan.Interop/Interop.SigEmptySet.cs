using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "sigemptyset", SetLastError = true)]
    internal static unsafe partial int SigEmptySet(void* set);
}
