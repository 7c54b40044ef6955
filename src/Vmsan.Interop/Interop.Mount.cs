using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const ulong MS_RDONLY = 1;
    internal const ulong MS_NOSUID = 2;
    internal const ulong MS_NODEV = 4;
    internal const ulong MS_NOEXEC = 8;
    internal const ulong MS_REMOUNT = 32;

    [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string? source, string target, string? fsType, ulong flags, string? data);
}
