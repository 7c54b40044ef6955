using System.Runtime.InteropServices;

namespace Vmsan.Core.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Chown(string path, int owner, int group);
}
