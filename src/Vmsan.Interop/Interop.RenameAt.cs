using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    /// <summary>renameat(2).</summary>
    [LibraryImport(Lib, EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int RenameAt(int olddirfd, string oldpath, int newdirfd, string newpath);
}
