using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "unlockpt", SetLastError = true)]
    internal static partial int Unlockpt(int fd);
}
