using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int RLIMIT_NOFILE = 7;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Soft;
        public ulong Hard;
    }

    [LibraryImport(Lib, EntryPoint = "setrlimit", SetLastError = true)]
    internal static partial int SetRlimit(int resource, in RLimit limit);
}
