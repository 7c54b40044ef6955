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
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
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

    public void Dispose()
    {
        Libc.Flock(_handle, Libc.LOCK_UN);
        _handle.Dispose();
    }
}
