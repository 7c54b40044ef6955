using System.Runtime.InteropServices;
using System.Text;

namespace Vmsan.Files;

/// <summary>
/// The extractor's file system calls, all relative to open directory descriptors: a single name under a directory fd
/// (<c>*at</c> calls, never following a final symlink), or a relative path the kernel resolves beneath the extraction
/// root (<c>openat2</c> with <c>RESOLVE_BENEATH</c>: symlinks are followed only while they stay under the root; an
/// absolute one, or one that climbs out, fails with EXDEV). So a process that swaps a directory for a symlink between a
/// check and a use cannot redirect a write outside the root: there is no check-then-open by path. Kernels without
/// openat2 (before 5.6) get a component-by-component <c>openat(O_NOFOLLOW)</c> walk, which refuses every symlink on
/// the way (stricter, equally safe).
/// </summary>
internal static class BeneathFs
{
    public const int ENoEnt = 2, EExist = 17, ENotDir = 20, EIsDir = 21, ELoop = 40, EXDev = 18;
    private const int ENoSys = 38, EIntr = 4;
    private const int ORdonly = 0, OWronly = 0x1, OCreat = 0x40, OExcl = 0x80, ODirectory = 0x10000, ONoFollow = 0x20000, OCloexec = 0x80000,
        OPath = 0x200000;
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
    private const long SysOpenat2 = 437; // the same number on every architecture (unified syscall table)
    private const ulong ResolveNoMagicLinks = 0x02, ResolveBeneath = 0x08;

    private static volatile bool _noOpenat2;

    private static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>The root itself: an O_PATH directory fd (the final component is not followed).</summary>
    public static int OpenRoot(string path)
    {
        var fd = Libc.OpenAt(AtFdCwd, path, OPath | ODirectory | ONoFollow | OCloexec, 0);
        return fd >= 0 ? fd : throw new IOException($"open {path}: {Marshal.GetPInvokeErrorMessage(Errno)}");
    }

    /// <summary>
    /// A directory fd for <paramref name="relative"/> resolved beneath <paramref name="rootFd"/>, or -errno. O_PATH unless
    /// <paramref name="readable"/> (fchmod/futimens need a real fd); <paramref name="noFollowLast"/> refuses a final symlink.
    /// </summary>
    public static unsafe int OpenDirectoryBeneath(int rootFd, string relative, bool readable = false, bool noFollowLast = false)
    {
        var flags = (readable ? ORdonly : OPath) | ODirectory | OCloexec | (noFollowLast ? ONoFollow : 0);
        if (!_noOpenat2)
        {
            var bytes = Encoding.UTF8.GetBytes(relative + "\0");
            var how = stackalloc ulong[3] { (ulong)flags, 0, ResolveBeneath | ResolveNoMagicLinks };
            long r;
            fixed (byte* p = bytes)
            {
                do
                {
                    r = Libc.Syscall(SysOpenat2, rootFd, (long)p, (long)how, 24);
                }
                while (r < 0 && Errno == EIntr);
            }

            if (r >= 0)
            {
                return (int)r;
            }

            var errno = Errno;
            if (errno != ENoSys)
            {
                return -errno;
            }

            _noOpenat2 = true;
        }

        // No openat2: one component at a time, never following a symlink.
        var current = rootFd;
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < parts.Length; i++)
        {
            var last = i == parts.Length - 1;
            var next = Libc.OpenAt(current, parts[i], (last && readable ? ORdonly : OPath) | ODirectory | ONoFollow | OCloexec, 0);
            var errno = Errno;
            if (current != rootFd)
            {
                Libc.CloseFd(current);
            }

            if (next < 0)
            {
                return -errno;
            }

            current = next;
        }

        return current == rootFd ? Libc.OpenAt(rootFd, ".", (readable ? ORdonly : OPath) | ODirectory | OCloexec, 0) : current;
    }

    /// <summary>mkdirat; 0 or -errno.</summary>
    public static int MkdirAt(int dirFd, string name, int mode) => Libc.MkdirAt(dirFd, name, mode) == 0 ? 0 : -Errno;

    /// <summary>fchownat without following a symlink.</summary>
    public static void LChownAt(int dirFd, string name, int uid, int gid, string display)
    {
        if (Libc.FchownAt(dirFd, name, uid, gid, AtSymlinkNoFollow) != 0)
        {
            throw new IOException($"lchown {display}: {Marshal.GetPInvokeErrorMessage(Errno)}");
        }
    }

    /// <summary>A new file (O_CREAT|O_EXCL|O_NOFOLLOW, write only) named <paramref name="name"/> in <paramref name="dirFd"/>.</summary>
    public static int CreateExclusiveAt(int dirFd, string name, int mode, string display)
    {
        int fd;
        do
        {
            fd = Libc.OpenAt(dirFd, name, OWronly | OCreat | OExcl | ONoFollow | OCloexec, mode);
        }
        while (fd < 0 && Errno == EIntr);

        return fd >= 0 ? fd : throw new IOException($"open {display}: {Marshal.GetPInvokeErrorMessage(Errno)}");
    }

    /// <summary>renameat within one directory; false when a directory is in the way (EISDIR).</summary>
    public static bool TryRenameAt(int dirFd, string from, string to, string display)
    {
        if (Libc.RenameAt(dirFd, from, dirFd, to) == 0)
        {
            return true;
        }

        var errno = Errno;
        return errno == EIsDir ? false : throw new IOException($"rename {display}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>symlinkat.</summary>
    public static void SymlinkAt(string target, int dirFd, string name, string display)
    {
        if (Libc.SymlinkAt(target, dirFd, name) != 0)
        {
            throw new IOException($"symlink {display}: {Marshal.GetPInvokeErrorMessage(Errno)}");
        }
    }

    /// <summary>linkat (no symlink following).</summary>
    public static void LinkAt(int fromDirFd, string fromName, int toDirFd, string toName, string display)
    {
        if (Libc.LinkAt(fromDirFd, fromName, toDirFd, toName, 0) != 0)
        {
            throw new IOException($"link {display}: {Marshal.GetPInvokeErrorMessage(Errno)}");
        }
    }

    /// <summary>unlinkat of a non-directory, errors ignored (cleanup).</summary>
    public static void UnlinkQuietly(int dirFd, string name) => Libc.UnlinkAt(dirFd, name, 0);
}
