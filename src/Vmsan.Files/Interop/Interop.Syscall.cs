using System.Runtime.InteropServices;

namespace Vmsan.Files;

internal static partial class Interop
{
    /// <summary>syscall(2) with four arguments (openat2 has no glibc wrapper).</summary>
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3, long a4);
}
