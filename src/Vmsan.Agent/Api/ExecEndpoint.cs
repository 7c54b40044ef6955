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
/// The exec is a plain, unlisted <see cref="Session"/> on pipes with stdin /dev/null, and the chunked response body
/// is its one viewer.
/// </summary>
internal sealed class ExecEndpoint(SessionManager sessions)
{
    public const string DefaultPath = ExecEnvironment.DefaultPath;

    public async ValueTask HandleAsync(RequestContext context)
    {
        var ct = context.ServerToken;
        var body = await context.ReadBodyAsync(1024 * 1024, ct).ConfigureAwait(false);
        // The streaming API's fields (stdin, tty, detach, session) do not apply here.
        var request = Parse(body) with { Stdin = false, Tty = false, Detach = false, Session = null };
        try
        {
            sessions.Reserve();
        }
        catch (SessionException e)
        {
            await context.WriteErrorAsync(e.Status, e.Code, e.Message).ConfigureAwait(false);
            return;
        }

        Session session;
        Viewer viewer;
        var reserved = true;
        try
        {
            var stream = await context.StartStreamingAsync(200, AgentProtocol.FramesContentType, ct).ConfigureAwait(false);
            UserAccount user;
            try
            {
                user = sessions.Users.Resolve(request.User);
            }
            catch (UserNotFoundException e)
            {
                await new FrameWriter(stream).WriteFrameAsync(FrameType.Error,
                    JsonSerializer.SerializeToUtf8Bytes(new AgentError(AgentErrorCodes.UserNotFound, e.Message), AgentJsonContext.Default.AgentError), ct).ConfigureAwait(false);
                await context.CompleteStreamingAsync(ct).ConfigureAwait(false);
                return;
            }

            viewer = new Viewer(new ResponseTransport(context, stream));
            reserved = false;
            session = sessions.StartUnlisted(request, user, viewer);
        }
        finally
        {
            if (reserved)
            {
                sessions.Release();
            }
        }

        using var monitorCts = new CancellationTokenSource();
        var peerClosed = context.Connection.WaitForPeerCloseAsync(monitorCts.Token);
        if (await Task.WhenAny(viewer.SendLoop, peerClosed).ConfigureAwait(false) != peerClosed)
        {
            await monitorCts.CancelAsync().ConfigureAwait(false);
        }

        if ((await peerClosed.ConfigureAwait(false) && !viewer.SendLoop.IsCompleted) || viewer.Closed)
        {
            // The client went away (or stopped taking frames) before the exit frame: no exit frame, the process
            // group dies with its only viewer, and the connection is aborted (not reusable mid-body).
            AgentLog.Debug($"exec {session.Pid}: client went away; process group killed");
            session.Detach(viewer);
        }

        await viewer.SendLoop.ConfigureAwait(false);
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

    /// <summary>The chunked response body as a viewer's transport.</summary>
    private sealed class ResponseTransport(RequestContext context, Stream body) : IViewerTransport
    {
        public ValueTask SendAsync(byte[] frame) => body.WriteAsync(frame, context.ServerToken);

        public ValueTask CompleteAsync() => context.CompleteStreamingAsync(context.ServerToken);

        public void Abort() => context.Connection.Abort();
    }
}
