using System.Runtime.InteropServices;

namespace Vmsan.Files;

internal static partial class Interop
{
    /// <summary>renameat(2).</summary>
    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int RenameAt(int olddirfd, string oldpath, int newdirfd, string newpath);
}
