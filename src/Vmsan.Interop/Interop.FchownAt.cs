using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>fchownat(2).</summary>
    [LibraryImport(Lib, EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int FchownAt(int dirfd, string path, int uid, int gid, int flags);
}
