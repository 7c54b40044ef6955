using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "sethostname", SetLastError = true)]
    internal static unsafe partial int SetHostname(byte* name, nuint length);
}
