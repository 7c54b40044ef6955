using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    /// <summary>glibc 2.29+: chdir in the child before exec, so relative program paths resolve against it.</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addchdir_np", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int PosixSpawnFileActionsAddChdir(void* actions, string path);
}
