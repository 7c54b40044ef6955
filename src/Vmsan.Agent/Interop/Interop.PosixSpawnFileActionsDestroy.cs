using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_destroy", SetLastError = true)]
    internal static unsafe partial int PosixSpawnFileActionsDestroy(void* actions);
}
