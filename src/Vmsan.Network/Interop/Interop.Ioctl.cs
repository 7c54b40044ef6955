using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Network.Interop;

internal static partial class Libc
{
    internal const uint TUNSETIFF = 0x400454ca;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(SafeFileHandle fd, nuint request, void* arg);
}
