using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "getgroups", SetLastError = true)]
    internal static unsafe partial int GetGroups(int size, uint* list);
}
