using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_init", SetLastError = true)]
    internal static unsafe partial int PosixSpawnAttrInit(void* attr);
}
