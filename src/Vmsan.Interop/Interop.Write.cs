using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteNative(Microsoft.Win32.SafeHandles.SafeFileHandle fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint WriteNative(int fd, byte* buffer, nuint count);

    /// <summary>write(2) of the whole buffer with EINTR retry.</summary>
    internal static unsafe void Write(Microsoft.Win32.SafeHandles.SafeFileHandle fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var done = 0;
            while (done < buffer.Length)
            {
                var n = WriteNative(fd, p + done, (nuint)(buffer.Length - done));
                if (n >= 0)
                {
                    done += (int)n;
                    continue;
                }

                var errno = LastErrno;
                if (errno != EINTR)
                {
                    throw ErrnoException("write", errno);
                }
            }
        }
    }
}
