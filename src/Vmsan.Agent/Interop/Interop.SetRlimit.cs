using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const int RLIMIT_NOFILE = 7;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Soft;
        public ulong Hard;
    }

    [LibraryImport(Libc, EntryPoint = "setrlimit", SetLastError = true)]
    internal static partial int SetRlimit(int resource, in RLimit limit);
}
