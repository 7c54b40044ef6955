using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int O_CLOEXEC = 0x80000;

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    private static unsafe partial int Pipe2Native(int* fds, int flags);

    /// <summary>Creates a close-on-exec pipe; both ends are owned SafeHandles.</summary>
    internal static unsafe (Microsoft.Win32.SafeHandles.SafeFileHandle Read, Microsoft.Win32.SafeHandles.SafeFileHandle Write) Pipe()
    {
        var fds = stackalloc int[2];
        Check(Pipe2Native(fds, O_CLOEXEC), "pipe2");
        return (new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[0], ownsHandle: true),
                new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[1], ownsHandle: true));
    }
}
