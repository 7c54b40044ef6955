using System.Runtime.InteropServices;

namespace Vmsan.Core.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Link(string oldPath, string newPath);
}
