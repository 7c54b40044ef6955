using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "sethostname", SetLastError = true)]
    internal static unsafe partial int SetHostname(byte* name, nuint length);
}
