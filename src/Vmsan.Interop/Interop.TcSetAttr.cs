using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "tcsetattr", SetLastError = true)]
    internal static unsafe partial int TcSetAttr(int fd, int actions, byte* termios);
}
