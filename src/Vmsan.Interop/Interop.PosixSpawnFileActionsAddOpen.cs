using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int O_RDONLY = 0;

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int PosixSpawnFileActionsAddOpen(void* actions, int fd, string path, int flags, int mode);
}
