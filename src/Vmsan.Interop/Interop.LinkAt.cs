using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>linkat(2).</summary>
    [LibraryImport(Lib, EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int LinkAt(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);
}
