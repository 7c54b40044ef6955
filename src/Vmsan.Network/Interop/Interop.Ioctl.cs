using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Network.Interop;

internal static partial class Libc
{
    internal const uint TUNSETIFF = 0x400454ca;
    internal const uint TUNSETOWNER = 0x400454cc;
    internal const uint TUNSETGROUP = 0x400454ce;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(SafeFileHandle fd, nuint request, void* arg);

    /// <summary>The ioctls whose argument is a value, not a pointer (TUNSETOWNER, TUNSETGROUP).</summary>
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(SafeFileHandle fd, nuint request, nuint arg);
}
