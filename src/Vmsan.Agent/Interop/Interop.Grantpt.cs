using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "grantpt", SetLastError = true)]
    internal static partial int Grantpt(int fd);
}
