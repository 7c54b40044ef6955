using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "tcgetattr", SetLastError = true)]
    internal static unsafe partial int TcGetAttr(int fd, byte* termios);
}
