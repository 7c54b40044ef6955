using System.Net.WebSockets;
using System.Text.Json;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Sessions;
using Vmsan.Agent.WebSockets;

namespace Vmsan.Agent.Api;

/// <summary>
/// GET /exec/ws and GET /exec/attach: WebSocket views of a session. Agent to client: frames (started, stdout,
/// stderr, exit or error) in binary messages, then a normal close. Client to agent: stdin, stdin-eof, signal and
/// resize frames, in binary messages that may split or join frames freely. On /exec/ws the first client message is
/// the JSON <see cref="ExecRequest"/>.
/// </summary>
internal sealed class ExecStreamEndpoint(SessionManager sessions)
{
    private const int MaxRequestBytes = 1024 * 1024;

    public async ValueTask HandleExecAsync(RequestContext context)
    {
        if (sessions.AtCapacity)
        {
            await context.WriteErrorAsync(429, AgentErrorCodes.LimitReached, $"too many concurrent execs (limit {sessions.Limits.MaxExecs})").ConfigureAwait(false);
            return;
        }

        using var socket = await WebSocketHandshake.AcceptAsync(context).ConfigureAwait(false);
        if (socket is null)
        {
            return;
        }

        ExecRequest request;
        try
        {
            request = ExecEndpoint.Parse(await ReceiveMessageAsync(socket, context.ServerToken).ConfigureAwait(false), allowEmptyCmd: true);
            if (request.Cmd.Count == 0 && !request.Tty)
            {
                throw new HttpBadRequestException("cmd may be empty only with tty (the login shell)", closeConnection: false);
            }
        }
        catch (HttpBadRequestException e)
        {
            await SendErrorAndCloseAsync(socket, AgentErrorCodes.BadRequest, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException)
        {
            return;
        }

        var viewer = new Viewer(new WebSocketTransport(socket));
        Session session;
        try
        {
            session = sessions.StartOrAttach(request, viewer);
        }
        catch (SessionException e)
        {
            await FailViewerAsync(socket, viewer, e.Code, e.Message).ConfigureAwait(false);
            return;
        }

        await ServeViewerAsync(socket, session, viewer, context.ServerToken).ConfigureAwait(false);
    }

    public async ValueTask HandleAttachAsync(RequestContext context)
    {
        var id = QueryValue(context.Request.Query, "id");
        if (string.IsNullOrEmpty(id))
        {
            await context.WriteErrorAsync(400, AgentErrorCodes.BadRequest, "attach needs ?id=EXEC_ID (or a session name)").ConfigureAwait(false);
            return;
        }

        Session session;
        try
        {
            session = sessions.Find(id);
        }
        catch (SessionException e)
        {
            await context.WriteErrorAsync(e.Status, e.Code, e.Message).ConfigureAwait(false);
            return;
        }

        using var socket = await WebSocketHandshake.AcceptAsync(context).ConfigureAwait(false);
        if (socket is null)
        {
            return;
        }

        var viewer = new Viewer(new WebSocketTransport(socket));
        if (!session.Attach(viewer))
        {
            await FailViewerAsync(socket, viewer, AgentErrorCodes.LimitReached, $"exec {id} has {sessions.Limits.MaxViewers} viewers already").ConfigureAwait(false);
            return;
        }

        await ServeViewerAsync(socket, session, viewer, context.ServerToken).ConfigureAwait(false);
    }

    /// <summary>Reads the client's frames until it closes or the session ends; then lets the send loop finish.</summary>
    private static async Task ServeViewerAsync(WebSocket socket, Session session, Viewer viewer, CancellationToken ct)
    {
        try
        {
            var reader = new FrameReader(WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: false));
            while (await reader.ReadFrameAsync(ct).ConfigureAwait(false) is { } frame)
            {
                switch (frame.Type)
                {
                    case FrameType.Stdin:
                        session.WriteStdin(frame.Payload.Span);
                        break;
                    case FrameType.StdinEof:
                        session.CloseStdin();
                        break;
                    case FrameType.Signal:
                        var signal = JsonSerializer.Deserialize(frame.Payload.Span, AgentJsonContext.Default.ExecSignal);
                        if (signal is { Signal: > 0 and < 65 })
                        {
                            session.KillGroup(signal.Signal);
                        }

                        break;
                    case FrameType.Resize:
                        var size = JsonSerializer.Deserialize(frame.Payload.Span, AgentJsonContext.Default.ExecResize);
                        if (size is not null)
                        {
                            session.Resize(size.Cols, size.Rows);
                        }

                        break;
                    default:
                        AgentLog.Debug($"exec {session.Id}: ignoring a {frame.Type} frame from a client");
                        break;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or JsonException or ObjectDisposedException)
        {
            AgentLog.Debug($"exec {session.Id}: viewer stream ended: {e.Message}");
        }

        // The client closed (or broke). If the session already ended, the send loop is finishing the close handshake.
        if (session.Running)
        {
            session.Detach(viewer);
        }

        await Task.WhenAny(viewer.SendLoop, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReceiveMessageAsync(WebSocket socket, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, ct).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new WebSocketException("closed before the exec request");
            }

            message.Write(buffer, 0, result.Count);
            if (message.Length > MaxRequestBytes)
            {
                throw new HttpBadRequestException($"exec request over {MaxRequestBytes} bytes", 413, closeConnection: false);
            }

            if (result.EndOfMessage)
            {
                return message.ToArray();
            }
        }
    }

    /// <summary>An error frame through the viewer's own send loop (the only sender on the socket), then its close.</summary>
    private static async Task FailViewerAsync(WebSocket socket, Viewer viewer, string code, string message)
    {
        viewer.Enqueue(FrameCodec.Encode(FrameType.Error, JsonSerializer.SerializeToUtf8Bytes(new AgentError(code, message), AgentJsonContext.Default.AgentError)));
        viewer.Complete();
        await viewer.SendLoop.ConfigureAwait(false);
        try
        {
            // Wait (briefly) for the client's answering close so the error is not lost to a reset.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var buffer = new byte[1024];
            while ((await socket.ReceiveAsync(buffer, cts.Token).ConfigureAwait(false)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static async Task SendErrorAndCloseAsync(WebSocket socket, string code, string message)
    {
        try
        {
            var frame = FrameCodec.Encode(FrameType.Error, JsonSerializer.SerializeToUtf8Bytes(new AgentError(code, message), AgentJsonContext.Default.AgentError));
            await socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None).ConfigureAwait(false);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, code, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    internal static string? QueryValue(string? query, string name)
    {
        foreach (var pair in (query ?? "").TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            if (Uri.UnescapeDataString(key) == name)
            {
                return eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            }
        }

        return null;
    }

    /// <summary>A WebSocket as a viewer's transport: one binary message per frame, a normal close at the end.</summary>
    private sealed class WebSocketTransport(WebSocket socket) : IViewerTransport
    {
        public ValueTask SendAsync(byte[] frame) =>
            socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);

        public async ValueTask CompleteAsync()
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "exited", CancellationToken.None).ConfigureAwait(false);
            }
        }

        public void Abort() => socket.Abort();
    }
}
