using System.Runtime.InteropServices;

namespace Vmsan.Files;

internal static partial class Interop
{
    /// <summary>mkdirat(2).</summary>
    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MkdirAt(int dirfd, string path, int mode);
}
