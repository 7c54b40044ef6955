using System.Runtime.InteropServices;

namespace Vmsan.Agent.Protocol.Files;

/// <summary>The few file system calls .NET does not offer: realpath, link, lchown.</summary>
public static partial class FileSystemInterop
{
    /// <summary>The canonical path (every symlink resolved), or null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        var p = RealPathNative(path, 0);
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
            Free(p);
        }
    }

    /// <summary>rename(2): atomic; replaces a file or symlink at <paramref name="newPath"/> without following it.</summary>
    public static void Rename(string oldPath, string newPath)
    {
        if (RenameNative(oldPath, newPath) != 0)
        {
            throw new IOException($"rename {newPath}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>link(2).</summary>
    public static void Link(string existing, string newPath)
    {
        if (LinkNative(existing, newPath) != 0)
        {
            throw new IOException($"link {newPath}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>lchown(2): changes the owner of a path, not of what a symlink points at.</summary>
    public static void LChown(string path, int uid, int gid)
    {
        if (LChownNative(path, uid, gid) != 0)
        {
            throw new IOException($"lchown {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint RealPathNative(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint p);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameNative(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string existing, string newPath);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChownNative(string path, int uid, int gid);
}

/// <summary>What is at a path, without following a final symlink.</summary>
internal enum PathKind
{
    Missing,
    Directory,
    Symlink,
    File,
    Other,
}

/// <summary>lstat through statx (its struct layout is the same on every architecture).</summary>
internal readonly partial record struct PathStat(PathKind Kind, int Mode, long Size, long MtimeSeconds, uint MtimeNanos)
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    public static unsafe PathStat Of(string path)
    {
        var buffer = stackalloc byte[256];
        if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
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

    public DateTimeOffset Mtime => DateTimeOffset.FromUnixTimeSeconds(MtimeSeconds).AddTicks(MtimeNanos / 100);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatxNative(int dirfd, string path, int flags, uint mask, byte* buffer);
}
