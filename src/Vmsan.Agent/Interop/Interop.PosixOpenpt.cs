using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const int O_RDWR = 2;
    internal const int O_NOCTTY = 0x100;

    [LibraryImport(Libc, EntryPoint = "posix_openpt", SetLastError = true)]
    internal static partial int PosixOpenpt(int flags);
}
