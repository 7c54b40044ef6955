using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint ReadNative(Microsoft.Win32.SafeHandles.SafeFileHandle fd, byte* buffer, nuint count);

    /// <summary>read(2) with EINTR retry; returns 0 at end of file.</summary>
    internal static unsafe int Read(Microsoft.Win32.SafeHandles.SafeFileHandle fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = ReadNative(fd, p, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }

                var errno = LastErrno;
                if (errno != EINTR)
                {
                    throw ErrnoException("read", errno);
                }
            }
        }
    }
}
