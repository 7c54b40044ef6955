using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigmask", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrSetSigMask(void* attr, void* sigset);
}
