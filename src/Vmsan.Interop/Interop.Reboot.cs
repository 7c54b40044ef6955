using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int RB_POWER_OFF = 0x4321fedc;

    [LibraryImport(Lib, EntryPoint = "reboot", SetLastError = true)]
    internal static partial int Reboot(int command);
}
