using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>posix_spawn(3): returns 0 or an errno value (it does not set errno).</summary>
    [LibraryImport(Lib, EntryPoint = "posix_spawn", SetLastError = true)]
    internal static unsafe partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);
}
