using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    /// <summary>
    /// syscall(2) with three arguments. The credential calls go through it on purpose: glibc's setuid family applies
    /// the change to every thread of the process, the raw system calls only to the calling thread.
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3);

    internal static long SysSetgroups => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 159 : 116;

    internal static long SysSetresuid => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 147 : 117;

    internal static long SysSetresgid => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 149 : 119;
}
