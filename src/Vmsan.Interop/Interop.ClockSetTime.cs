using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int CLOCK_REALTIME = 0;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Lib, EntryPoint = "clock_settime", SetLastError = true)]
    internal static partial int ClockSetTime(int clock, in TimeSpec time);
}
