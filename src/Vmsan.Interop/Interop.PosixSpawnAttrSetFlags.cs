using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;
    internal const short POSIX_SPAWN_SETSID = 0x80;

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrSetFlags(void* attr, short flags);
}
