using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    internal const int CLOCK_REALTIME = 0;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Libc, EntryPoint = "clock_settime", SetLastError = true)]
    internal static partial int ClockSetTime(int clock, in TimeSpec time);
}
