using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "cfmakeraw")]
    internal static unsafe partial void CfMakeRaw(byte* termios);
}
