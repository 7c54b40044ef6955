using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Agent;

/// <summary>
/// Log lines on stderr, which is the serial console in the guest. Written straight to fd 2 so the
/// Console class (terminal setup, signal handlers) is never initialised.
/// </summary>
internal static class AgentLog
{
    private static readonly SafeFileHandle Stderr = new(2, ownsHandle: false);
    private static readonly SafeFileHandle Stdout = new(1, ownsHandle: false);
    private static readonly Lock Gate = new();

    public static bool Verbose { get; set; }

    public static void Debug(string message)
    {
        if (Verbose)
        {
            Write(Stderr, "vmsan-agent: debug: " + message);
        }
    }

    public static void Info(string message) => Write(Stderr, "vmsan-agent: " + message);

    public static void Warn(string message) => Write(Stderr, "vmsan-agent: warning: " + message);

    public static void Error(string message) => Write(Stderr, "vmsan-agent: error: " + message);

    /// <summary>Writes a line on stdout: only the machine-readable markers (listening, ready) go there.</summary>
    public static void Marker(string line) => Write(Stdout, line);

    private static void Write(SafeFileHandle fd, string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        lock (Gate)
        {
            try
            {
                Libc.Write(fd, bytes);
            }
            catch (IOException)
            {
                // Nowhere left to report a broken console.
            }
        }
    }
}
