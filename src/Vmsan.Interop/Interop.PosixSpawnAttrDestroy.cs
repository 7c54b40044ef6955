using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrDestroy(void* attr);
}
