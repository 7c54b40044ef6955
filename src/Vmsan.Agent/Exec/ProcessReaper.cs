namespace Vmsan.Agent.Exec;

/// <summary>
/// The only caller of waitpid in the process: one thread reaps every child (and, as PID 1 or a subreaper,
/// every orphan) with waitpid(-1) and hands exit statuses to the exec waiting for that pid. Spawning and
/// registering happen under the same lock the dispatcher takes, so a child reaped before its pid is
/// registered is still delivered; any other unknown pid is an orphan and its status is dropped.
/// </summary>
internal sealed class ProcessReaper
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<int>> _waiters = [];
    private readonly ManualResetEventSlim _mayHaveChildren = new(false);
    private long _generation;
    private volatile bool _noChildren = true;

    /// <summary>True when the last waitpid said there are no children at all.</summary>
    public bool NoChildren => _noChildren;

    public void Start()
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = "reaper" };
        thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="spawn"/> (which returns a pid, or a negative errno) under the reaper lock and
    /// registers the pid; <paramref name="exitStatus"/> completes with the raw wait status.
    /// </summary>
    public int Spawn(Func<int> spawn, out Task<int> exitStatus)
    {
        lock (_gate)
        {
            var pid = spawn();
            if (pid <= 0)
            {
                exitStatus = Task.FromResult(0);
                return pid;
            }

            var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters[pid] = tcs;
            _generation++;
            _noChildren = false;
            _mayHaveChildren.Set();
            exitStatus = tcs.Task;
            return pid;
        }
    }

    private unsafe void Loop()
    {
        while (true)
        {
            long generation;
            lock (_gate)
            {
                generation = _generation;
            }

            int status;
            var pid = Libc.WaitPid(-1, &status, 0);
            if (pid > 0)
            {
                Dispatch(pid, status);
                continue;
            }

            var errno = Libc.LastErrno;
            if (errno == Libc.EINTR)
            {
                continue;
            }

            if (errno == Libc.ECHILD)
            {
                lock (_gate)
                {
                    // Only sleep if nothing was spawned since this waitpid started, or the wake-up is lost.
                    if (_generation == generation)
                    {
                        _noChildren = true;
                        _mayHaveChildren.Reset();
                    }
                }

                _mayHaveChildren.Wait(TimeSpan.FromSeconds(1));
                continue;
            }

            AgentLog.Error($"waitpid failed: {Libc.StrError(errno)}");
            Thread.Sleep(100);
        }
    }

    private void Dispatch(int pid, int status)
    {
        TaskCompletionSource<int>? waiter;
        lock (_gate)
        {
            _waiters.Remove(pid, out waiter);
        }

        if (waiter is null)
        {
            AgentLog.Debug($"reaped orphan {pid} (status {status})");
            return;
        }

        waiter.TrySetResult(status);
    }

    /// <summary>Decodes a wait status: exit code, or the terminating signal.</summary>
    public static (int? ExitCode, int? Signal) Decode(int status)
    {
        var low = status & 0x7f;
        if (low == 0)
        {
            return ((status >> 8) & 0xff, null);
        }

        return (null, low);
    }
}
