using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigmask", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrSetSigMask(void* attr, void* sigset);
}
