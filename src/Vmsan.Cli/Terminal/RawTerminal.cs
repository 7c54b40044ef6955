using System.Runtime.InteropServices;

namespace Vmsan.Cli.Terminal;

/// <summary>
/// The local terminal in raw mode for a remote PTY (keys, Ctrl-C included, go to the guest as bytes). The saved
/// settings are restored on dispose, on process exit and on an unhandled exception, so a crash never leaves the
/// user's shell without echo.
/// </summary>
internal sealed unsafe partial class RawTerminal : IDisposable
{
    private const int TCSANOW = 0;
    private const ulong TIOCGWINSZ = 0x5413;

    // glibc's struct termios is 60 bytes; keep room to spare.
    private readonly byte[] _saved = new byte[256];
    private int _restored;

    private RawTerminal()
    {
        fixed (byte* saved = _saved)
        {
            if (Libc.TcGetAttr(0, saved) != 0)
            {
                throw new IOException($"tcgetattr: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }

            var raw = stackalloc byte[256];
            new Span<byte>(saved, 256).CopyTo(new Span<byte>(raw, 256));
            Libc.CfMakeRaw(raw);
            Libc.TcSetAttr(0, TCSANOW, raw);
        }

        AppDomain.CurrentDomain.ProcessExit += OnExit;
        AppDomain.CurrentDomain.UnhandledException += OnCrash;
    }

    /// <summary>Whether fd 0 and fd 1 are terminals.</summary>
    public static bool IsInteractive => Libc.IsATty(0) == 1 && Libc.IsATty(1) == 1;

    /// <summary>Raw mode when stdin is a terminal, else null.</summary>
    public static RawTerminal? TryEnter() => Libc.IsATty(0) == 1 ? new RawTerminal() : null;

    /// <summary>The terminal's size (of stdout, else stdin), or null when neither is a terminal.</summary>
    public static (int Cols, int Rows)? Size()
    {
        var size = stackalloc ushort[4];
        foreach (var fd in new[] { 1, 0, 2 })
        {
            if (Libc.Ioctl(fd, TIOCGWINSZ, size) == 0 && size[1] > 0 && size[0] > 0)
            {
                return (size[1], size[0]);
            }
        }

        return null;
    }

    public void Dispose()
    {
        Restore();
        AppDomain.CurrentDomain.ProcessExit -= OnExit;
        AppDomain.CurrentDomain.UnhandledException -= OnCrash;
    }

    private void OnExit(object? sender, EventArgs e) => Restore();

    private void OnCrash(object? sender, UnhandledExceptionEventArgs e) => Restore();

    private void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) != 0)
        {
            return;
        }

        fixed (byte* saved = _saved)
        {
            Libc.TcSetAttr(0, TCSANOW, saved);
        }
    }
}
