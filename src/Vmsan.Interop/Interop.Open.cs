using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int O_DIRECTORY = 0x10000;
    internal const int O_CREAT = 0x40;

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int OpenNative(string path, int flags, int mode);

    /// <summary>open(2) with EINTR retry, as an owned handle.</summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle Open(string path, int flags)
    {
        while (true)
        {
            var fd = OpenNative(path, flags | O_CLOEXEC, 0);
            if (fd >= 0)
            {
                return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            }

            var errno = LastErrno;
            if (errno != EINTR)
            {
                throw ErrnoException("open", errno, path);
            }
        }
    }

    /// <summary>
    /// open(2) as an owned handle, invalid (errno kept for the caller) when it failed. Not File.OpenHandle:
    /// .NET emulates FileShare on Unix with its own flock on open, which would collide with the exclusive
    /// flock vmsan takes on the same file from other processes, and it would fstat/flock an nsfs file that
    /// setns only needs opened.
    /// </summary>
    internal static Microsoft.Win32.SafeHandles.SafeFileHandle OpenHandle(string path, int flags, int mode) =>
        new(OpenNative(path, flags, mode), ownsHandle: true);
}
