using System.Runtime.InteropServices;

namespace Vmsan.Images.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Link(string existing, string newPath);
}
