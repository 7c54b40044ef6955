using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "sync", SetLastError = true)]
    internal static partial void Sync();
}
