using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const int RB_POWER_OFF = 0x4321fedc;

    [LibraryImport(Libc, EntryPoint = "reboot", SetLastError = true)]
    internal static partial int Reboot(int command);
}
