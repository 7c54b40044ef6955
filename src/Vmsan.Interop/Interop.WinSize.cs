using System.Runtime.InteropServices;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const ulong TIOCSWINSZ = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    internal struct WinSize
    {
        public ushort Rows;
        public ushort Cols;
        public ushort XPixel;
        public ushort YPixel;
    }

    /// <summary>Sets a terminal's size; the kernel sends SIGWINCH to its foreground process group.</summary>
    internal static unsafe int SetWindowSize(int fd, int cols, int rows)
    {
        var size = new WinSize { Cols = (ushort)Math.Clamp(cols, 1, ushort.MaxValue), Rows = (ushort)Math.Clamp(rows, 1, ushort.MaxValue) };
        return Ioctl(fd, TIOCSWINSZ, &size);
    }
}
