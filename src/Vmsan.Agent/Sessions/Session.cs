using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Vmsan.Agent.Exec;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Users;

namespace Vmsan.Agent.Sessions;

/// <summary>
/// One process started through the streaming API — on pipes or a PTY — with its viewers and, when detached, a
/// ring buffer of recent output. <c>exec -i</c>, <c>exec -it</c>, <c>exec -d</c> + attach and <c>connect</c> are
/// all views of this, and so is <c>POST /exec</c> (an unlisted plain session whose one viewer is the HTTP response).
/// A plain (non-detached) session dies with its last viewer; a detached one runs on unviewed.
/// </summary>
internal sealed class Session
{
    /// <summary>After the process exits, how long to wait for background processes to release its output.</summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a detached session waits for a slow viewer before dropping it.</summary>
    private static readonly TimeSpan SlowViewerLimit = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly Lock _stdinGate = new();
    private readonly List<Viewer> _viewers = [];
    private readonly OutputRing? _ring;
    private readonly AgentLimits _limits;
    private SafeFileHandle? _stdin;
    private SafeFileHandle? _master;
    private int _timedOut;

    public Session(string id, ExecRequest request, UserAccount user, AgentLimits limits, bool listed = true)
    {
        Id = id;
        Listed = listed;
        Request = request;
        User = user;
        _limits = limits;
        Detached = request.Detach || !string.IsNullOrEmpty(request.Session);
        _ring = Detached ? new OutputRing(limits.RingBytesPerStream) : null;
        StartedAt = DateTimeOffset.UtcNow;
    }

    public string Id { get; }

    public ExecRequest Request { get; }

    public UserAccount User { get; }

    public bool Detached { get; }

    /// <summary>
    /// Whether ps, attach and kill see it. POST /exec sessions are not listed: their started frame carries no id, and
    /// nothing but their own client can reach them.
    /// </summary>
    public bool Listed { get; }

    public string? Name => string.IsNullOrEmpty(Request.Session) ? null : Request.Session;

    public int Pid { get; private set; }

    public IReadOnlyList<string> Argv { get; private set; } = [];

    public DateTimeOffset StartedAt { get; }

    public ExecExit? Exit { get; private set; }

    public bool Running => Exit is null;

    /// <summary>Completes once the exit frame went to the viewers.</summary>
    public Task Exited => _exited.Task;

    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Called once the session has exited (the manager releases its slot).</summary>
    public Action<Session>? OnExit { get; set; }

    public ExecInfo Info()
    {
        lock (_gate)
        {
            return new ExecInfo(Id, Pid, Argv.Count > 0 ? Argv : Request.Cmd, Running ? "running" : "exited", Exit?.ExitCode, Exit?.Signal,
                StartedAt, Request.Tty, Detached, Name, User.Name, _viewers.Count);
        }
    }

    /// <summary>Adds a viewer: it gets a started frame, the buffered output, then live frames (or the exit frame).</summary>
    /// <returns>False when the viewer limit is reached.</returns>
    public bool Attach(Viewer viewer)
    {
        lock (_gate)
        {
            if (Running && _viewers.Count >= _limits.MaxViewers)
            {
                return false;
            }

            if (Pid > 0)
            {
                viewer.Enqueue(StartedFrame());
            }

            if (_ring is not null)
            {
                foreach (var frame in _ring.Frames)
                {
                    viewer.Enqueue(frame);
                }
            }

            if (Exit is { } exit)
            {
                viewer.Enqueue(ExitFrame(exit));
                viewer.Complete();
                return true;
            }

            _viewers.Add(viewer);
            return true;
        }
    }

    /// <summary>A viewer went away. The last viewer of a plain session takes the process group with it.</summary>
    public void Detach(Viewer viewer)
    {
        bool kill;
        lock (_gate)
        {
            _viewers.Remove(viewer);
            kill = !Detached && Running && _viewers.Count == 0;
        }

        viewer.Abort();
        if (kill)
        {
            AgentLog.Debug($"exec {Id}: last viewer gone; killing process group {Pid}");
            KillGroup(Libc.SIGKILL);
        }
    }

    public void KillGroup(int signal)
    {
        if (Pid > 0 && Running)
        {
            // The child leads its own session: -pid is the whole group, grandchildren included.
            Libc.Kill(-Pid, signal);
        }
    }

    public void WriteStdin(ReadOnlySpan<byte> data)
    {
        lock (_stdinGate)
        {
            var target = _master ?? _stdin;
            if (target is null || target.IsClosed || data.IsEmpty)
            {
                return;
            }

            try
            {
                Libc.Write(target, data);
            }
            catch (ErrnoException e) when (e.Errno is Libc.EPIPE or Libc.EIO)
            {
                // The process no longer reads stdin; like a shell pipeline, the rest is dropped.
            }
        }
    }

    public void CloseStdin()
    {
        lock (_stdinGate)
        {
            if (_master is not null)
            {
                // A terminal has no EOF of its own: VEOF (Ctrl-D) ends input in canonical mode.
                WriteStdinLocked(_master, [0x04]);
                return;
            }

            _stdin?.Dispose();
        }
    }

    private static void WriteStdinLocked(SafeFileHandle target, ReadOnlySpan<byte> data)
    {
        try
        {
            Libc.Write(target, data);
        }
        catch (ErrnoException e) when (e.Errno is Libc.EPIPE or Libc.EIO)
        {
        }
    }

    public void Resize(int cols, int rows)
    {
        lock (_stdinGate)
        {
            if (_master is { IsClosed: false } master && cols > 0 && rows > 0)
            {
                Libc.SetWindowSize((int)master.DangerousGetHandle(), cols, rows);
            }
        }
    }

    /// <summary>Starts the process. Failures to start (126/127) end the session at once with a stderr message.</summary>
    public void Launch(ProcessReaper reaper)
    {
        var request = Request;
        var cwd = string.IsNullOrEmpty(request.Cwd)
            ? (Directory.Exists(User.Home) ? User.Home : "/")
            : Path.GetFullPath(request.Cwd, "/");
        if (!Directory.Exists(cwd))
        {
            Fail(126, $"cwd {cwd}: No such file or directory");
            return;
        }

        var env = ExecEnvironment.Build(User, request.Env, request.Tty);
        string path;
        if (request.Cmd.Count == 0)
        {
            // connect: the user's login shell, argv[0] "-name" like login(1) does.
            path = File.Exists(User.Shell) && Libc.Access(User.Shell, Libc.X_OK) == 0 ? User.Shell : "/bin/sh";
            Argv = ["-" + Path.GetFileName(path)];
        }
        else
        {
            var resolution = CommandResolver.Resolve(request.Cmd[0], env.GetValueOrDefault("PATH"), cwd);
            if (resolution.Path is null)
            {
                Fail(resolution.ExitCode, resolution.Error!);
                return;
            }

            path = resolution.Path;
            Argv = request.Cmd;
        }

        var envp = env.Select(kv => kv.Key + "=" + kv.Value).ToArray();
        SafeFileHandle? stdoutRead = null, stderrRead = null, stdinRead = null, stdoutWrite = null, stderrWrite = null;
        string? tty = null;
        try
        {
            if (request.Tty)
            {
                (_master, tty) = Pty.Open(request.Cols > 0 ? request.Cols : 80, request.Rows > 0 ? request.Rows : 24, User);
            }
            else
            {
                (stdoutRead, stdoutWrite) = Libc.Pipe();
                (stderrRead, stderrWrite) = Libc.Pipe();
                if (request.Stdin)
                {
                    (stdinRead, _stdin) = Libc.Pipe();
                }
            }

            var argv = Argv;
            var user = User;
            var pid = reaper.Spawn(() => ThreadCredentials.Run(user, () =>
                ProcessSpawner.Spawn(path, argv, envp, cwd, stdinRead, stdoutWrite, stderrWrite, tty)), out var exitStatus);
            if (pid <= 0)
            {
                var (code, message) = CommandResolver.FromSpawnError(Argv[0], -pid);
                _master?.Dispose();
                _stdin?.Dispose();
                stdoutRead?.Dispose();
                stderrRead?.Dispose();
                Fail(code, message);
                return;
            }

            lock (_gate)
            {
                Pid = pid;
                var started = StartedFrame();
                foreach (var viewer in _viewers)
                {
                    viewer.Enqueue(started);
                }
            }

            _ = SuperviseAsync(exitStatus, stdoutRead ?? _master!, stderrRead);
        }
        finally
        {
            stdinRead?.Dispose();
            stdoutWrite?.Dispose();
            stderrWrite?.Dispose();
        }
    }

    private async Task SuperviseAsync(Task<int> exitStatus, SafeFileHandle output, SafeFileHandle? errors)
    {
        var (cancelRead, cancelWrite) = Libc.Pipe();
        using var _1 = cancelRead;
        using var _2 = cancelWrite;
        var pumps = new List<Task> { new PipePump(output, cancelRead, data => Publish(FrameType.Stdout, data), $"exec-{Pid}-out").Completion };
        if (errors is not null)
        {
            pumps.Add(new PipePump(errors, cancelRead, data => Publish(FrameType.Stderr, data), $"exec-{Pid}-err").Completion);
        }

        using var timeout = Request.TimeoutMs > 0 ? new Timer(_ =>
        {
            if (!exitStatus.IsCompleted)
            {
                Volatile.Write(ref _timedOut, 1);
                KillGroup(Libc.SIGKILL);
            }
        }, null, TimeSpan.FromMilliseconds(Request.TimeoutMs), Timeout.InfiniteTimeSpan) : null;

        var status = await exitStatus.ConfigureAwait(false);
        var all = Task.WhenAll(pumps);
        if (await Task.WhenAny(all, Task.Delay(DrainGrace)).ConfigureAwait(false) != all)
        {
            AgentLog.Debug($"exec {Id}: output still open after exit (background process); not waiting for it");
            Libc.Write(cancelWrite, [1]);
        }

        try
        {
            await all.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            AgentLog.Warn($"exec {Id}: output pump failed: {e.Message}");
        }

        output.Dispose();
        errors?.Dispose();
        lock (_stdinGate)
        {
            _stdin?.Dispose();
            _master?.Dispose();
        }

        var (code, signal) = ProcessReaper.Decode(status);
        ExecExit exit = Volatile.Read(ref _timedOut) != 0
            ? new ExecExit(124, signal, TimedOut: true)
            : signal is { } s ? new ExecExit(128 + s, s, false) : new ExecExit(code!.Value, null, false);
        Finish(exit);
    }

    private void Fail(int exitCode, string message)
    {
        Publish(FrameType.Stderr, Encoding.UTF8.GetBytes($"vmsan-agent: {message}\n"));
        Finish(new ExecExit(exitCode, null, false));
    }

    private void Finish(ExecExit exit)
    {
        var frame = ExitFrame(exit);
        lock (_gate)
        {
            Exit = exit;
            foreach (var viewer in _viewers)
            {
                viewer.Enqueue(frame);
                viewer.Complete();
            }

            _viewers.Clear();
        }

        _exited.TrySetResult();
        OnExit?.Invoke(this);
    }

    private byte[] StartedFrame() => FrameCodec.Encode(FrameType.Started,
        JsonSerializer.SerializeToUtf8Bytes(new ExecStarted(Pid, Listed ? Id : null, Request.Tty), AgentJsonContext.Default.ExecStarted));

    private static byte[] ExitFrame(ExecExit exit) =>
        FrameCodec.Encode(FrameType.Exit, JsonSerializer.SerializeToUtf8Bytes(exit, AgentJsonContext.Default.ExecExit));

    /// <summary>Called by the pump threads: record and fan out one chunk, then wait while viewers are far behind.</summary>
    private void Publish(FrameType type, ReadOnlySpan<byte> data)
    {
        var frame = FrameCodec.Encode(type, data);
        Viewer[] viewers;
        lock (_gate)
        {
            _ring?.Add(type, frame);
            viewers = [.. _viewers];
            foreach (var viewer in viewers)
            {
                viewer.Enqueue(frame);
            }
        }

        foreach (var viewer in viewers)
        {
            // A plain exec's one client sets the pace (back-pressure on the process); a detached session drops a
            // viewer that stalls, since it can reattach and replay.
            if (!viewer.WaitForRoom(Detached ? SlowViewerLimit : Timeout.InfiniteTimeSpan))
            {
                AgentLog.Debug($"exec {Id}: dropping a viewer that stopped reading");
                Detach(viewer);
            }
        }
    }
}
