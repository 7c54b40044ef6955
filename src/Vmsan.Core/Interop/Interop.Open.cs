using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Core.Interop;

internal static partial class Libc
{
    internal const int O_RDWR = 0x2;
    internal const int O_CREAT = 0x40;
    internal const int O_CLOEXEC = 0x80000;

    // Not File.OpenHandle: .NET emulates FileShare on Unix with its own flock on open, which
    // would collide with the exclusive flock we take on the same file from other processes.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, int mode);
}
