using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Lsetxattr(string path, string name, ReadOnlySpan<byte> value, nuint size, int flags);
}
