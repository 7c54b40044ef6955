using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>
    /// syscall(2) with three arguments. The credential calls go through it on purpose: glibc's setuid family applies
    /// the change to every thread of the process, the raw system calls only to the calling thread.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3);

    /// <summary>syscall(2) with four arguments (openat2 has no glibc wrapper).</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3, long a4);

    internal static long SysSetgroups => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 159 : 116;

    internal static long SysSetresuid => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 147 : 117;

    internal static long SysSetresgid => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 149 : 119;
}
