using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int SIGTERM = 15;
    internal const int SIGKILL = 9;

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);
}
