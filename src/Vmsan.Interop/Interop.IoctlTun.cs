using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const uint TUNSETIFF = 0x400454ca;
    internal const uint TUNSETOWNER = 0x400454cc;
    internal const uint TUNSETGROUP = 0x400454ce;

}
