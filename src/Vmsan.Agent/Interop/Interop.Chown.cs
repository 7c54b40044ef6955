using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Chown(string path, uint owner, uint group);
}
