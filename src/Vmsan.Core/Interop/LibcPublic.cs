namespace Vmsan.Core.Interop;

/// <summary>The few native facts other assemblies need, without exposing the raw imports.</summary>
public static class LibcPublic
{
    public static bool IsRoot() => Libc.GetEuid() == 0;

    /// <summary>Sends a signal to an exact process (pid reuse checked).</summary>
    public static void Signal(State.ProcessRef? process, int signal) => State.ProcessProbe.Kill(process, signal);

    /// <summary>chown(2); throws IOException naming the path and the errno.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (Libc.Chown(path, unchecked((uint)uid), unchecked((uint)gid)) != 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new IOException($"chown({path}, {uid}, {gid}) failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary>link(2): a hard link; throws IOException naming both paths and the errno (EXDEV across filesystems).</summary>
    public static void Link(string existing, string newPath)
    {
        if (!TryHardLink(existing, newPath))
            throw new IOException($"link({existing}, {newPath}) failed: the paths are on different filesystems (EXDEV)");
    }

    /// <summary>
    /// link(2): a second name for the same inode (no copy). False with EXDEV (the two paths are on different
    /// filesystems); any other failure throws IOException naming both paths.
    /// </summary>
    public static bool TryHardLink(string existing, string newPath)
    {
        if (Libc.Link(existing, newPath) == 0)
            return true;
        var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (errno == 18) // EXDEV
            return false;
        throw new IOException($"link({existing}, {newPath}) failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>Sends <paramref name="signal"/> to every process of the group <paramref name="leader"/> leads (kill(-pgid)).</summary>
    public static void SignalGroup(int leader, int signal) => Libc.Kill(-leader, signal);

    /// <summary>
    /// Whether any process of the group <paramref name="leader"/> led is left (kill(-pgid, 0)). A group id is not
    /// handed out again while a member lives, so once this is false for a group the caller started, it stays false.
    /// </summary>
    public static bool GroupAlive(int leader) => Libc.Kill(-leader, 0) == 0;

    public const int SIGKILL = Libc.SIGKILL;
    public const int SIGTERM = Libc.SIGTERM;
    public const int SIGHUP = 1;
}
