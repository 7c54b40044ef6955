using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int AT_FDCWD = -100;
    internal const int AT_SYMLINK_NOFOLLOW = 0x100;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    [LibraryImport(Lib, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Utimensat(int dirfd, string path, ReadOnlySpan<Timespec> times, int flags);
}
