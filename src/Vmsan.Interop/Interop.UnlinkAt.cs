using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>unlinkat(2).</summary>
    [LibraryImport(Lib, EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int UnlinkAt(int dirfd, string path, int flags);
}
