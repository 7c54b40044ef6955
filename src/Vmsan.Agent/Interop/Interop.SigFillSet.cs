using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "sigfillset", SetLastError = true)]
    internal static unsafe partial int SigFillSet(void* set);
}
