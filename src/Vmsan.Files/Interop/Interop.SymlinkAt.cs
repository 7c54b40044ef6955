using System.Runtime.InteropServices;

namespace Vmsan.Files;

internal static partial class Interop
{
    /// <summary>symlinkat(2).</summary>
    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int SymlinkAt(string target, int newdirfd, string linkpath);
}
