using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2", SetLastError = true)]
    internal static unsafe partial int PosixSpawnFileActionsAddDup2(void* actions, int fd, int newFd);
}
