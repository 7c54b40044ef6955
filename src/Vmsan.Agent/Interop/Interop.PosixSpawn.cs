using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    /// <summary>posix_spawn(3): returns 0 or an errno value (it does not set errno).</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn", SetLastError = true)]
    internal static unsafe partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);
}
