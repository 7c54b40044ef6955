using System.Text;
using Microsoft.Win32.SafeHandles;
using Vmsan.Agent.Users;

namespace Vmsan.Agent.Exec;

/// <summary>A pseudo-terminal without fork: the master stays in the agent, the child opens the slave by path.</summary>
internal static class Pty
{
    /// <summary>Opens a master with the given size; the slave is handed to <paramref name="owner"/> (mode 0620) so a
    /// non-root child can open it.</summary>
    public static unsafe (SafeFileHandle Master, string SlavePath) Open(int cols, int rows, UserAccount owner)
    {
        var fd = Libc.Check(Libc.PosixOpenpt(Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC), "posix_openpt");
        var master = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Libc.Check(Libc.Grantpt(fd), "grantpt");
            Libc.Check(Libc.Unlockpt(fd), "unlockpt");
            var buffer = stackalloc byte[128];
            var error = Libc.PtsnameR(fd, buffer, 128);
            if (error != 0)
            {
                throw new ErrnoException("ptsname_r", error, null);
            }

            var path = Encoding.UTF8.GetString(buffer, IndexOfNul(buffer));
            Libc.SetWindowSize(fd, cols, rows);
            if (owner.Uid != 0 && ThreadCredentials.IsRoot)
            {
                Libc.Check(Libc.Chown(path, owner.Uid, owner.Gid), "chown", path);
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupWrite);
            }

            return (master, path);
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    private static unsafe int IndexOfNul(byte* buffer)
    {
        var i = 0;
        while (i < 128 && buffer[i] != 0)
        {
            i++;
        }

        return i;
    }
}
