using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrInit(void* attr);
}
