using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "getpid", SetLastError = true)]
    internal static partial int GetPid();
}
