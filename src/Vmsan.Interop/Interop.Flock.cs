using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;
    internal const int LOCK_UN = 8;

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(SafeFileHandle fd, int operation);
}
