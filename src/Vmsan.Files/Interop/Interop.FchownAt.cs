using System.Runtime.InteropServices;

namespace Vmsan.Files;

internal static partial class Interop
{
    /// <summary>fchownat(2).</summary>
    [LibraryImport("libc", EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int FchownAt(int dirfd, string path, int uid, int gid, int flags);
}
