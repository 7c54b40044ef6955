using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_destroy", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrDestroy(void* attr);
}
