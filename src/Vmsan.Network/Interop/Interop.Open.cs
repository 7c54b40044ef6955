using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Network.Interop;

internal static partial class Libc
{
    internal const int O_RDONLY = 0;
    internal const int O_CLOEXEC = 0x80000;
    internal const int ENOENT = 2;
    internal const int EINTR = 4;
    internal const int EPERM = 1;

    // File.OpenHandle would fstat/flock the nsfs file; a plain open(2) is all setns needs.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, int mode);
}
