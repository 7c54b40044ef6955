using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int WNOHANG = 1;

    [LibraryImport(Lib, EntryPoint = "waitpid", SetLastError = true)]
    internal static unsafe partial int WaitPid(int pid, int* status, int options);
}
