using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigdefault", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrSetSigDefault(void* attr, void* sigset);
}
