using Microsoft.Win32.SafeHandles;

namespace Vmsan.Agent.Exec;

/// <summary>
/// Copies one pipe to a sink on a dedicated thread with blocking reads: 2 pipes per exec would otherwise tie up
/// thread-pool threads. poll() also watches a cancel pipe, so the pump can be stopped while a background
/// process still holds the write end.
/// </summary>
internal sealed class PipePump
{
    private readonly SafeFileHandle _pipe;
    private readonly SafeFileHandle _cancel;
    private readonly Action<ReadOnlySpan<byte>> _sink;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PipePump(SafeFileHandle pipe, SafeFileHandle cancel, Action<ReadOnlySpan<byte>> sink, string name)
    {
        _pipe = pipe;
        _cancel = cancel;
        _sink = sink;
        var thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.Start();
    }

    public Task Completion => _done.Task;

    private void Run()
    {
        var addedPipe = false;
        var addedCancel = false;
        try
        {
            _pipe.DangerousAddRef(ref addedPipe);
            _cancel.DangerousAddRef(ref addedCancel);
            Span<Libc.PollFd> fds =
            [
                new() { Fd = (int)_pipe.DangerousGetHandle(), Events = Libc.POLLIN },
                new() { Fd = (int)_cancel.DangerousGetHandle(), Events = Libc.POLLIN },
            ];
            var buffer = new byte[64 * 1024];
            while (true)
            {
                fds[0].REvents = fds[1].REvents = 0;
                Libc.Poll(fds, -1);
                if (fds[1].REvents != 0)
                {
                    break;
                }

                if (fds[0].REvents == 0)
                {
                    continue;
                }

                int n;
                try
                {
                    n = Libc.Read(_pipe, buffer);
                }
                catch (ErrnoException e) when (e.Errno == Libc.EIO)
                {
                    // Linux returns EIO on a PTY master once the last slave fd is closed: that is EOF.
                    break;
                }

                if (n == 0)
                {
                    break;
                }

                _sink(buffer.AsSpan(0, n));
            }

            _done.TrySetResult();
        }
        catch (Exception e)
        {
            _done.TrySetException(e);
        }
        finally
        {
            if (addedPipe)
            {
                _pipe.DangerousRelease();
            }

            if (addedCancel)
            {
                _cancel.DangerousRelease();
            }
        }
    }
}
