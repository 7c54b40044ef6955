using System.Runtime.InteropServices;

namespace Vmsan.Files;

/// <summary>The few file system calls .NET does not offer: realpath, link, lchown.</summary>
public static partial class FileSystemInterop
{
    /// <summary>The canonical path (every symlink resolved), or null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        var p = Libc.RealPath(path, 0);
        if (p == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(p);
        }
        finally
        {
            Libc.Free(p);
        }
    }

    /// <summary>rename(2): atomic; replaces a file or symlink at <paramref name="newPath"/> without following it.</summary>
    public static void Rename(string oldPath, string newPath)
    {
        if (Libc.Rename(oldPath, newPath) != 0)
        {
            throw new IOException($"rename {newPath}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>link(2).</summary>
    public static void Link(string existing, string newPath)
    {
        if (Libc.Link(existing, newPath) != 0)
        {
            throw new IOException($"link {newPath}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>lchown(2): changes the owner of a path, not of what a symlink points at.</summary>
    public static void LChown(string path, int uid, int gid)
    {
        if (Libc.Lchown(path, uid, gid) != 0)
        {
            throw new IOException($"lchown {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    private const int ORdonly = 0, OWronly = 0x1, OCreat = 0x40, OExcl = 0x80, ONoFollow = 0x20000, OCloexec = 0x80000;
    private const int EIntr = 4, EIsDir = 21;

    /// <summary>
    /// open(2) of a new file (<c>O_CREAT|O_EXCL|O_NOFOLLOW</c>, write only): a plain fd, so the extractor's per-file
    /// work is a handful of system calls on the calling thread (no FileStream, no flock, no thread-pool hop).
    /// </summary>
    public static int CreateExclusive(string path, int mode)
    {
        int fd;
        do
        {
            fd = Libc.OpenNative(path, OWronly | OCreat | OExcl | ONoFollow | OCloexec, mode);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);

        return fd >= 0 ? fd : throw new IOException($"open {path}: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>Writes all of <paramref name="data"/> to <paramref name="fd"/>.</summary>
    public static unsafe void WriteAll(int fd, ReadOnlySpan<byte> data, string pathForErrors)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Libc.WriteNative(fd, p + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EIntr)
                    {
                        continue;
                    }

                    throw new IOException($"write {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
                }

                done += (int)n;
            }
        }
    }

    /// <summary>pwrite(2) of all of <paramref name="data"/> at <paramref name="offset"/> (the extractor skips holes).</summary>
    public static unsafe void PWriteAll(int fd, ReadOnlySpan<byte> data, long offset, string pathForErrors)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Libc.PWrite(fd, p + done, (nuint)(data.Length - done), offset + done);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EIntr)
                    {
                        continue;
                    }

                    throw new IOException($"write {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
                }

                done += (int)n;
            }
        }
    }

    /// <summary>ftruncate(2): sets the length (a trailing hole costs no disk).</summary>
    public static void FTruncate(int fd, long length, string pathForErrors)
    {
        if (Libc.FTruncate(fd, length) != 0)
        {
            throw new IOException($"truncate {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>fchown(2), fchmod(2) and futimens(2) (mtime only; atime left alone) on an open fd, in that order (chown clears set-id bits).</summary>
    public static unsafe void SetOwnerModeTime(int fd, int? uid, int? gid, int? mode, long mtimeSeconds, long mtimeNanos, string pathForErrors)
    {
        if (uid is not null && Libc.FChown(fd, uid.Value, gid ?? -1) != 0)
        {
            throw new IOException($"chown {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        if (mode is { } m && Libc.FChmod(fd, m) != 0)
        {
            throw new IOException($"chmod {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        const long UtimeOmit = (1L << 30) - 2;
        var times = stackalloc long[4] { 0, UtimeOmit, mtimeSeconds, mtimeNanos };
        if (Libc.Futimens(fd, times) != 0)
        {
            throw new IOException($"utimens {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>close(2); a failure is reported (a write error may only show here on some file systems).</summary>
    public static void Close(int fd, string pathForErrors)
    {
        if (Libc.CloseFd(fd) != 0 && Marshal.GetLastPInvokeError() != EIntr)
        {
            throw new IOException($"close {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>open(2) for reading without following a final symlink; -1 when it cannot be opened.</summary>
    public static int OpenForRead(string path)
    {
        int fd;
        do
        {
            fd = Libc.OpenNative(path, ORdonly | ONoFollow | OCloexec, 0);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);

        return fd;
    }

    /// <summary>open(2) for reading without following a final symlink; the fd, or -errno.</summary>
    public static int TryOpenForRead(string path)
    {
        var fd = OpenForRead(path);
        return fd >= 0 ? fd : -Marshal.GetLastPInvokeError();
    }

    /// <summary>EACCES.</summary>
    public const int EAccess = 13;

    /// <summary>
    /// True when the open file lives on a pseudo file system (proc, sysfs, debugfs, tracefs, securityfs, cgroup,
    /// configfs, efivarfs, bpf): their stat sizes do not describe the content (/proc/kcore says 128 TiB, most say 0).
    /// </summary>
    public static unsafe bool IsOnPseudoFileSystem(int fd)
    {
        var buffer = stackalloc long[32];
        if (Libc.FStatFs(fd, buffer) != 0)
        {
            return false;
        }

        return (ulong)buffer[0] is 0x9fa0 or 0x62656572 or 0x64626720 or 0x74726163 or 0x73636673 or 0x27e0eb or 0x63677270
            or 0x62656570 or 0xde5e81e4 or 0xcafe4a11;
    }

    /// <summary>pread(2); 0 at end of file.</summary>
    public static unsafe int PRead(int fd, Span<byte> buffer, long offset, string pathForErrors)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.PRead(fd, p, (nuint)buffer.Length, offset);
                if (n >= 0)
                {
                    return (int)n;
                }

                if (Marshal.GetLastPInvokeError() != EIntr)
                {
                    throw new IOException($"read {pathForErrors}: {Marshal.GetLastPInvokeErrorMessage()}");
                }
            }
        }
    }

    /// <summary>close(2), errors ignored (cleanup after a failure).</summary>
    public static void CloseQuietly(int fd) => Libc.CloseFd(fd);

    /// <summary>geteuid(2).</summary>
    public static int GetEUid() => (int)Libc.GetEuid();

    /// <summary>getegid(2).</summary>
    public static int GetEGid() => (int)Libc.GetEgid();

    /// <summary>The process umask (from /proc/self/status: umask(2) cannot read it without changing it); 0777 when unknown.</summary>
    public static int ProcessUmask => LazyUmask.Value;

    private static readonly Lazy<int> LazyUmask = new(() =>
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Umask:", StringComparison.Ordinal))
                {
                    return Convert.ToInt32(line[6..].Trim(), 8);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }

        return 0x1FF;
    });

    /// <summary>rename(2) that says whether it failed because a directory is in the way (EISDIR).</summary>
    internal static bool TryRename(string oldPath, string newPath, out bool directoryInTheWay)
    {
        directoryInTheWay = false;
        if (Libc.Rename(oldPath, newPath) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == EIsDir)
        {
            directoryInTheWay = true;
            return false;
        }

        throw new IOException($"rename {newPath}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

}

/// <summary>What is at a path, without following a final symlink.</summary>
public enum PathKind
{
    /// <summary>Nothing (ENOENT, ENOTDIR).</summary>
    Missing,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A symbolic link.</summary>
    Symlink,

    /// <summary>A regular file.</summary>
    File,

    /// <summary>A device, FIFO or socket.</summary>
    Other,
}

/// <summary>lstat through statx (its struct layout is the same on every architecture).</summary>
/// <param name="Kind">What is there.</param>
/// <param name="Mode">Permission bits (with set-id and sticky).</param>
/// <param name="Size">st_size.</param>
/// <param name="MtimeSeconds">Modification time, seconds.</param>
/// <param name="MtimeNanos">Modification time, nanoseconds part.</param>
public readonly partial record struct PathStat(PathKind Kind, int Mode, long Size, long MtimeSeconds, uint MtimeNanos)
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    /// <summary>lstat of <paramref name="path"/>; <see cref="PathKind.Missing"/> when nothing is there.</summary>
    public static PathStat Of(string path) => At(AtFdCwd, path);

    /// <summary>lstat of <paramref name="name"/> in the open directory <paramref name="dirFd"/>.</summary>
    public static unsafe PathStat At(int dirFd, string name)
    {
        var path = name;
        var buffer = stackalloc byte[256];
        if (Libc.Statx(dirFd, name, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is 2 or 20)
            {
                // ENOENT, ENOTDIR
                return default;
            }

            throw new IOException($"statx {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var mode = *(ushort*)(buffer + 28);
        var kind = (mode & 0xF000) switch
        {
            0x4000 => PathKind.Directory,
            0xA000 => PathKind.Symlink,
            0x8000 => PathKind.File,
            _ => PathKind.Other,
        };
        return new PathStat(kind, mode & 0xFFF, *(long*)(buffer + 40), *(long*)(buffer + 112), *(uint*)(buffer + 120));
    }

    /// <summary>The modification time.</summary>
    public DateTimeOffset Mtime => DateTimeOffset.FromUnixTimeSeconds(MtimeSeconds).AddTicks(MtimeNanos / 100);

}
