using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>glibc 2.29+: chdir in the child before exec, so relative program paths resolve against it.</summary>
    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addchdir_np", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int PosixSpawnFileActionsAddChdir(void* actions, string path);
}
