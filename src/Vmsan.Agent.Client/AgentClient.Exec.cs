using System.Net;
using System.Net.Http;
using System.Net.WebSockets;
using System.Text.Json;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Client;

internal sealed partial class AgentClient
{
    /// <summary>How often an exec stream pings the agent.</summary>
    public TimeSpan StreamKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an exec stream waits for the agent's pong before it ends with <see cref="AgentErrorReason.Unreachable"/>.</summary>
    public TimeSpan StreamKeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long opening an exec stream (clock check, connect, upgrade) may take before <see cref="AgentErrorReason.Unreachable"/>.</summary>
    public TimeSpan UpgradeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Starts a command over a WebSocket (GET /exec/ws): stdin (<see cref="ExecRequest.Stdin"/>), a PTY
    /// (<see cref="ExecRequest.Tty"/>), signals and resizes go through the returned <see cref="ExecStream"/>. With
    /// <see cref="ExecRequest.Session"/>, a running session of that name is attached instead.
    /// </summary>
    /// <exception cref="AgentException">Refused before the upgrade (401/403/429) or unreachable.</exception>
    public async Task<ExecStream> OpenExecAsync(ExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (socket, transport) = await ConnectWebSocketAsync(AgentProtocol.Paths.ExecStream, cancellationToken).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(request, AgentJsonContext.Default.ExecRequest),
                WebSocketMessageType.Text, endOfMessage: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            transport.Dispose();
            throw new AgentException(AgentErrorReason.Protocol, $"exec stream broke: {e.Message}", innerException: e);
        }

        return new ExecStream(socket, transport);
    }

    /// <summary>
    /// Attaches to a running or exited exec (GET /exec/attach): its buffered output first (detached execs keep the
    /// last 1 MiB per stream), then live output until it exits.
    /// </summary>
    /// <param name="idOrSession">An exec id (<c>e-…</c>) or a session name.</param>
    /// <param name="cancellationToken">Cancels the attach; the exec keeps running.</param>
    /// <exception cref="AgentException"><see cref="AgentErrorReason.Rejected"/> with <c>EXEC_NOT_FOUND</c> for an unknown id.</exception>
    public async Task<ExecStream> AttachExecAsync(string idOrSession, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(idOrSession);
        var (socket, transport) = await ConnectWebSocketAsync($"{AgentProtocol.Paths.ExecAttach}?id={Uri.EscapeDataString(idOrSession)}", cancellationToken)
            .ConfigureAwait(false);
        return new ExecStream(socket, transport);
    }

    /// <summary>Starts a detached exec (POST /execs): it runs without a client and keeps its recent output.</summary>
    /// <exception cref="AgentException">Rejected (<c>USER_NOT_FOUND</c>, <c>LIMIT_REACHED</c>) or unreachable.</exception>
    public async Task<ExecInfo> StartDetachedAsync(ExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var message = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.Execs.TrimStart('/'))
        {
            Content = JsonBody(request, AgentJsonContext.Default.ExecRequest),
        };
        using var response = await SendAsync(message, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync(response, AgentJsonContext.Default.ExecInfo, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Lists running execs and kept exited detached ones (GET /execs).</summary>
    public async Task<IReadOnlyList<ExecInfo>> ListExecsAsync(CancellationToken cancellationToken = default)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, AgentProtocol.Paths.Execs.TrimStart('/'));
        using var response = await SendAsync(message, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return (await ReadJsonAsync(response, AgentJsonContext.Default.ExecList, cancellationToken).ConfigureAwait(false)).Execs;
    }

    /// <summary>Sends a signal to an exec's process group (POST /execs/signal).</summary>
    /// <exception cref="AgentException">Rejected with <c>EXEC_NOT_FOUND</c> or <c>EXEC_EXITED</c>.</exception>
    public async Task<ExecInfo> SignalExecAsync(string idOrSession, int signal, CancellationToken cancellationToken = default)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.ExecsSignal.TrimStart('/'))
        {
            Content = JsonBody(new ExecSignalRequest(idOrSession, signal), AgentJsonContext.Default.ExecSignalRequest),
        };
        using var response = await SendAsync(message, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync(response, AgentJsonContext.Default.ExecInfo, cancellationToken).ConfigureAwait(false);
    }

    private async Task<(WebSocket Socket, IDisposable Transport)> ConnectWebSocketAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        // Ping/pong, not just keepalive pings: an agent that stops answering (its VM frozen, its network gone) must
        // end the stream, where a silent TCP connection would wait forever.
        socket.Options.KeepAliveInterval = StreamKeepAliveInterval;
        socket.Options.KeepAliveTimeout = StreamKeepAliveTimeout;
        if (!string.IsNullOrEmpty(_token))
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + _token);
        }

        using (var clock = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            // Best effort (it never fails the call), but bounded: a silent agent must not stall the exec here.
            clock.CancelAfter(UpgradeTimeout);
            try
            {
                await KeepClockInStepAsync(pathAndQuery.TrimStart('/'), clock.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        var handler = new SocketsHttpHandler
        {
            ConnectCallback = (_, ct) => _connect(ct),
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        var invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        using var upgrade = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        upgrade.CancelAfter(UpgradeTimeout);
        try
        {
            await socket.ConnectAsync(new Uri($"ws://{AgentProtocol.GuestAddress}:{AgentProtocol.Port}{pathAndQuery}"), invoker, upgrade.Token)
                .ConfigureAwait(false);
            return (socket, invoker);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            invoker.Dispose();
            throw new AgentException(AgentErrorReason.Unreachable, $"agent unreachable: no answer to the WebSocket upgrade within {UpgradeTimeout.TotalSeconds:0} s",
                innerException: e);
        }
        catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            var status = (int)socket.HttpStatusCode;
            socket.Dispose();
            invoker.Dispose();
            var code = AgentStatus.CodeFor(status);
            var reason = AgentStatus.ReasonFor(status, code);
            var what = status == 0 ? $"agent unreachable: {e.Message}" : $"agent answered {status} to the WebSocket upgrade" + status switch
            {
                404 => " (no such exec or session)",
                409 => " (the exec has exited)",
                429 => " (too many concurrent execs)",
                _ => "",
            };
            throw new AgentException(reason, what, code, e);
        }
        catch
        {
            socket.Dispose();
            invoker.Dispose();
            throw;
        }
    }
}
