using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Vmsan.Agent.Exec;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Sessions;
using Vmsan.Agent.Users;

namespace Vmsan.Agent.Api;

/// <summary>
/// POST /exec: runs one command and streams frames: started, then stdout/stderr as the pipes deliver
/// (binary, never split into lines), then exit. A command that cannot start gets a stderr frame and an exit
/// frame (127 not found, 126 not executable or missing cwd), without a started frame; an unknown user gets
/// a single error frame (USER_NOT_FOUND). A client that goes away mid-exec gets its process group killed.
/// </summary>
internal sealed class ExecEndpoint
{
    public const string DefaultPath = ExecEnvironment.DefaultPath;

    /// <summary>After the process exits, how long to wait for background processes to close its pipes.</summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromMilliseconds(500);

    private readonly ProcessReaper _reaper;
    private readonly SessionManager _sessions;
    private readonly ConcurrentDictionary<int, byte> _running = new();

    public ExecEndpoint(ProcessReaper reaper, SessionManager sessions)
    {
        _reaper = reaper;
        _sessions = sessions;
    }

    /// <summary>Kills the process group of every running exec (host-mode shutdown).</summary>
    public void KillAll()
    {
        foreach (var pid in _running.Keys)
        {
            Interop.Kill(-pid, Interop.SIGKILL);
        }

        _sessions.KillAll();
    }

    public async ValueTask HandleAsync(RequestContext context)
    {
        var ct = context.ServerToken;
        var body = await context.ReadBodyAsync(1024 * 1024, ct).ConfigureAwait(false);
        var request = Parse(body);
        try
        {
            _sessions.Reserve();
        }
        catch (SessionException e)
        {
            await context.WriteErrorAsync(e.Status, e.Code, e.Message).ConfigureAwait(false);
            return;
        }

        ExecExit? exit;
        FrameWriter writer;
        try
        {
            var stream = await context.StartStreamingAsync(200, AgentProtocol.FramesContentType, ct).ConfigureAwait(false);
            writer = new FrameWriter(stream);
            UserAccount user;
            try
            {
                user = _sessions.Users.Resolve(request.User);
            }
            catch (UserNotFoundException e)
            {
                await WriteJsonFrameAsync(writer, FrameType.Error,
                    JsonSerializer.SerializeToUtf8Bytes(new AgentError(AgentErrorCodes.UserNotFound, e.Message), AgentJsonContext.Default.AgentError), ct).ConfigureAwait(false);
                await context.CompleteStreamingAsync(ct).ConfigureAwait(false);
                return;
            }

            exit = await RunAsync(context, request, user, writer).ConfigureAwait(false);
        }
        finally
        {
            _sessions.Release();
        }

        if (exit is null)
        {
            // The client is gone: no exit frame, and the connection is not reusable.
            context.Connection.Abort();
            return;
        }

        await WriteJsonFrameAsync(writer, FrameType.Exit, JsonSerializer.SerializeToUtf8Bytes(exit, AgentJsonContext.Default.ExecExit), ct).ConfigureAwait(false);
        await context.CompleteStreamingAsync(ct).ConfigureAwait(false);
    }

    internal static ExecRequest Parse(byte[] body, bool allowEmptyCmd = false)
    {
        ExecRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, AgentJsonContext.Default.ExecRequest);
        }
        catch (JsonException e)
        {
            throw new HttpBadRequestException($"invalid exec request: {e.Message}", closeConnection: false);
        }

        if (request?.Cmd is not { } cmd || (cmd.Count == 0 && !allowEmptyCmd) || (cmd.Count > 0 && string.IsNullOrEmpty(cmd[0])))
        {
            throw new HttpBadRequestException("cmd must be a non-empty array of strings", closeConnection: false);
        }

        if (cmd.Any(a => a is null || a.Contains('\0', StringComparison.Ordinal)))
        {
            throw new HttpBadRequestException("cmd arguments must be strings without NUL", closeConnection: false);
        }

        if (request.Env is { } env && env.Any(kv => kv.Key.Length == 0 || kv.Key.Contains('=', StringComparison.Ordinal)
            || kv.Key.Contains('\0', StringComparison.Ordinal) || kv.Value is null || kv.Value.Contains('\0', StringComparison.Ordinal)))
        {
            throw new HttpBadRequestException("env names must be non-empty without '=' or NUL; values without NUL", closeConnection: false);
        }

        if (request.TimeoutMs < 0)
        {
            throw new HttpBadRequestException("timeoutMs must not be negative", closeConnection: false);
        }

        if (request.Cwd is { } cwd && cwd.Contains('\0', StringComparison.Ordinal))
        {
            throw new HttpBadRequestException("cwd must not contain NUL", closeConnection: false);
        }

        if (request.Session is { } session && (session.Length > 64 || session.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))))
        {
            throw new HttpBadRequestException("session names are 1-64 of [A-Za-z0-9._-]", closeConnection: false);
        }

        if (request.User is { } user && user.Contains('\0', StringComparison.Ordinal))
        {
            throw new HttpBadRequestException("user must not contain NUL", closeConnection: false);
        }

        return request;
    }

    /// <summary>Runs the process; null when the client disconnected.</summary>
    private async Task<ExecExit?> RunAsync(RequestContext context, ExecRequest request, UserAccount user, FrameWriter writer)
    {
        var ct = context.ServerToken;
        var command = request.Cmd[0];
        var cwd = string.IsNullOrEmpty(request.Cwd)
            ? (Directory.Exists(user.Home) ? user.Home : "/")
            : Path.GetFullPath(request.Cwd, "/");
        if (!Directory.Exists(cwd))
        {
            // Like `docker exec -w` with a missing directory: the runtime fails before exec, exit 126.
            return await FailAsync(writer, 126, $"cwd {cwd}: No such file or directory", ct).ConfigureAwait(false);
        }

        var env = ExecEnvironment.Build(user, request.Env, tty: false);
        var resolution = CommandResolver.Resolve(command, env.GetValueOrDefault("PATH"), cwd);
        if (resolution.Path is null)
        {
            return await FailAsync(writer, resolution.ExitCode, resolution.Error!, ct).ConfigureAwait(false);
        }

        var envp = env.Select(kv => kv.Key + "=" + kv.Value).ToArray();
        var (stdoutRead, stdoutWrite) = Interop.Pipe();
        var (stderrRead, stderrWrite) = Interop.Pipe();
        var (cancelRead, cancelWrite) = Interop.Pipe();
        using var _1 = stdoutRead;
        using var _2 = stderrRead;
        using var _3 = cancelRead;
        using var _4 = cancelWrite;

        int pid;
        Task<int> exitStatus;
        using (stdoutWrite)
        using (stderrWrite)
        {
            var path = resolution.Path;
            pid = _reaper.Spawn(() => ThreadCredentials.Run(user, () => ProcessSpawner.Spawn(path, request.Cmd, envp, cwd, null, stdoutWrite, stderrWrite)), out exitStatus);
        }

        if (pid <= 0)
        {
            var (code, message) = CommandResolver.FromSpawnError(command, -pid);
            return await FailAsync(writer, code, message, ct).ConfigureAwait(false);
        }

        _running[pid] = 0;
        try
        {
            return await SuperviseAsync(context, request, writer, pid, exitStatus, stdoutRead, stderrRead, cancelRead, cancelWrite).ConfigureAwait(false);
        }
        finally
        {
            _running.TryRemove(pid, out _);
        }
    }

    private static async Task<ExecExit?> SuperviseAsync(RequestContext context, ExecRequest request, FrameWriter writer, int pid,
        Task<int> exitStatus, Microsoft.Win32.SafeHandles.SafeFileHandle stdoutRead, Microsoft.Win32.SafeHandles.SafeFileHandle stderrRead,
        Microsoft.Win32.SafeHandles.SafeFileHandle cancelRead, Microsoft.Win32.SafeHandles.SafeFileHandle cancelWrite)
    {
        var ct = context.ServerToken;
        var writeGate = new Lock();
        var clientGone = 0;
        var timedOut = 0;

        void KillGroup()
        {
            // The child is a session leader: -pid is its whole process group, grandchildren included.
            Interop.Kill(-pid, Interop.SIGKILL);
        }

        void Sink(FrameType type, ReadOnlySpan<byte> data)
        {
            if (Volatile.Read(ref clientGone) != 0)
            {
                return;
            }

            try
            {
                lock (writeGate)
                {
                    writer.WriteFrame(type, data);
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // Keep draining the pipe (the process must not block on a full pipe) but stop writing.
                Volatile.Write(ref clientGone, 1);
                KillGroup();
            }
        }

        await WriteJsonFrameAsync(writer, FrameType.Started,
            JsonSerializer.SerializeToUtf8Bytes(new ExecStarted(pid), AgentJsonContext.Default.ExecStarted), ct).ConfigureAwait(false);

        var stdoutPump = new PipePump(stdoutRead, cancelRead, data => Sink(FrameType.Stdout, data), $"exec-{pid}-out");
        var stderrPump = new PipePump(stderrRead, cancelRead, data => Sink(FrameType.Stderr, data), $"exec-{pid}-err");

        using var monitorCts = new CancellationTokenSource();
        var monitor = context.Connection.WaitForPeerCloseAsync(monitorCts.Token).ContinueWith(t =>
        {
            if (t.Result)
            {
                Volatile.Write(ref clientGone, 1);
                KillGroup();
            }
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        using var timeout = request.TimeoutMs > 0 ? new Timer(_ =>
        {
            if (!exitStatus.IsCompleted)
            {
                Volatile.Write(ref timedOut, 1);
                KillGroup();
            }
        }, null, TimeSpan.FromMilliseconds(request.TimeoutMs), Timeout.InfiniteTimeSpan) : null;

        var status = await exitStatus.ConfigureAwait(false);
        var pumps = Task.WhenAll(stdoutPump.Completion, stderrPump.Completion);
        if (await Task.WhenAny(pumps, Task.Delay(DrainGrace, CancellationToken.None)).ConfigureAwait(false) != pumps)
        {
            AgentLog.Debug($"exec {pid}: pipes still open after exit (background process); not waiting for them");
            Interop.Write(cancelWrite, [1]);
        }

        try
        {
            await pumps.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            AgentLog.Warn($"exec {pid}: pipe pump failed: {e.Message}");
        }

        await monitorCts.CancelAsync().ConfigureAwait(false);
        await monitor.ConfigureAwait(false);
        if (Volatile.Read(ref clientGone) != 0)
        {
            AgentLog.Debug($"exec {pid}: client went away; process group killed");
            return null;
        }

        var (code, signal) = ProcessReaper.Decode(status);
        if (Volatile.Read(ref timedOut) != 0)
        {
            return new ExecExit(124, signal, TimedOut: true);
        }

        return signal is { } s ? new ExecExit(128 + s, s, false) : new ExecExit(code!.Value, null, false);
    }

    private static async Task<ExecExit> FailAsync(FrameWriter writer, int exitCode, string message, CancellationToken ct)
    {
        await writer.WriteFrameAsync(FrameType.Stderr, Encoding.UTF8.GetBytes($"vmsan-agent: {message}\n"), ct).ConfigureAwait(false);
        return new ExecExit(exitCode, null, false);
    }

    private static ValueTask WriteJsonFrameAsync(FrameWriter writer, FrameType type, byte[] json, CancellationToken ct) =>
        writer.WriteFrameAsync(type, json, ct);
}
