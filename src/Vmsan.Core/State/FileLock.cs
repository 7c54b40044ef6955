using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vmsan.Core.Errors;
using Vmsan.Core.Interop;

namespace Vmsan.Core.State;

/// <summary>
/// An exclusive advisory lock (flock) on a file. The kernel drops it when the process dies, so a
/// crashed command never leaves a lock behind.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly SafeFileHandle _handle;

    private FileLock(SafeFileHandle handle) => _handle = handle;

    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return AcquireIfDirectoryExists(path, timeout)
            ?? throw new VmsanException(ErrorCode.Internal, $"Cannot open lock file {path}: its directory vanished.");
    }

    /// <summary>
    /// Like <see cref="Acquire"/>, but never creates the lock's directory: null when it does not
    /// exist (the lock guards something that is not there, and taking it must not create it).
    /// </summary>
    public static FileLock? AcquireIfDirectoryExists(string path, TimeSpan timeout)
    {
        SafeFileHandle handle;
        do
        {
            handle = Libc.OpenHandle(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180 /* 0600: nobody else has any business with it */);
        }
        while (handle.IsInvalid && Marshal.GetLastPInvokeError() == Libc.EINTR);
        if (handle.IsInvalid && Marshal.GetLastPInvokeError() == 2 /* ENOENT: no such directory */)
        {
            handle.Dispose();
            return null;
        }
        if (handle.IsInvalid)
            throw new VmsanException(ErrorCode.Internal, $"Cannot open lock file {path}: errno {Marshal.GetLastPInvokeError()}",
                "Check that the vmsan state directory is writable.");
        var deadline = DateTime.UtcNow + timeout;
        var delay = 2;
        while (true)
        {
            if (Libc.Flock(handle, Libc.LOCK_EX | Libc.LOCK_NB) == 0)
                return new FileLock(handle);
            var errno = Marshal.GetLastPInvokeError();
            if (errno != 11 /* EWOULDBLOCK */ && errno != Libc.EINTR)
            {
                handle.Dispose();
                throw new VmsanException(ErrorCode.Internal, $"flock({path}) failed: errno {errno}");
            }
            if (DateTime.UtcNow > deadline)
            {
                handle.Dispose();
                throw new VmsanException(ErrorCode.VmBusy, $"Timed out waiting for the lock {path}.",
                    "Another vmsan command holds it; retry when it has finished.");
            }
            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 50);
        }
    }

    /// <summary>The lock if nobody holds it now (never waits); null when another process holds it.</summary>
    public static FileLock? TryAcquire(string path)
    {
        try
        {
            return Acquire(path, TimeSpan.Zero);
        }
        catch (VmsanException ex) when (ex.Code == ErrorCode.VmBusy)
        {
            return null;
        }
    }

    public void Dispose()
    {
        Libc.Flock(_handle, Libc.LOCK_UN);
        _handle.Dispose();
    }
}
