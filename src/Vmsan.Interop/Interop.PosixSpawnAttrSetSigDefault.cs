using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigdefault", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrSetSigDefault(void* attr, void* sigset);
}
