using System.Runtime.InteropServices;

namespace Vmsan.Interop;

/// <summary>Linux syscalls through libc; one native call per file, errno turned into exceptions naming the call.</summary>
internal static partial class Libc
{
    internal const string Lib = "libc";

    internal const int EINTR = 4;
    internal const int EIO = 5;
    internal const int EPIPE = 32;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EACCES = 13;
    internal const int EBUSY = 16;
    internal const int ENOTDIR = 20;
    internal const int EISDIR = 21;
    internal const int EPERM = 1;
    internal const int ENOEXEC = 8;
    internal const int ECHILD = 10;
    internal const int EAGAIN = 11;
    internal const int ELOOP = 40;
    internal const int ENAMETOOLONG = 36;

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static string StrError(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Throws for the errno left by <paramref name="call"/>.</summary>
    internal static Exception ErrnoException(string call, int errno, string? detail = null) =>
        new ErrnoException(call, errno, detail);

    /// <summary>Throws when <paramref name="result"/> is -1, naming <paramref name="call"/>.</summary>
    internal static int Check(int result, string call, string? detail = null)
    {
        if (result == -1)
        {
            throw ErrnoException(call, LastErrno, detail);
        }

        return result;
    }
}

/// <summary>A libc call failed.</summary>
internal sealed class ErrnoException : IOException
{
    public ErrnoException(string call, int errno, string? detail)
        : base($"{call}{(detail is null ? "" : $"({detail})")} failed: {Libc.StrError(errno)} (errno {errno})")
    {
        Call = call;
        Errno = errno;
    }

    public string Call { get; }

    public int Errno { get; }
}
