using System.Runtime.InteropServices;

namespace Vmsan.Vmm.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fstype, nuint flags, string? data);
}
