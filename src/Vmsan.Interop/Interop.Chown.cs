using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Chown(string path, uint owner, uint group);
}
