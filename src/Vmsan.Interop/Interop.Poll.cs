using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const short POLLIN = 0x001;
    internal const short POLLERR = 0x008;
    internal const short POLLHUP = 0x010;
    internal const short POLLNVAL = 0x020;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int PollNative(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>poll(2) with EINTR retry (the timeout restarts, which is fine for the infinite waits used here).</summary>
    internal static unsafe int Poll(Span<PollFd> fds, int timeoutMs)
    {
        fixed (PollFd* p = fds)
        {
            while (true)
            {
                var n = PollNative(p, (nuint)fds.Length, timeoutMs);
                if (n >= 0)
                {
                    return n;
                }

                var errno = LastErrno;
                if (errno != EINTR)
                {
                    throw ErrnoException("poll", errno);
                }
            }
        }
    }
}
