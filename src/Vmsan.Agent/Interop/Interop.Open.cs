using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const int O_DIRECTORY = 0x10000;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags, int mode);

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
}
