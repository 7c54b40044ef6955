using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy", SetLastError = true)]
    internal static unsafe partial int PosixSpawnFileActionsDestroy(void* actions);
}
