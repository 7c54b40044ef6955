using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "getgroups", SetLastError = true)]
    internal static unsafe partial int GetGroups(int size, uint* list);
}
