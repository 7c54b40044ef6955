using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>symlinkat(2).</summary>
    [LibraryImport(Lib, EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int SymlinkAt(string target, int newdirfd, string linkpath);
}
