using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Link(string oldPath, string newPath);
}
