using System.Runtime.InteropServices;

namespace Vmsan.Core.Interop;

internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    internal static partial int Setsid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint Geteuid();
}
