using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Client;

/// <summary>
/// Talks to one vmsan agent over HTTP/1.1. The transport is supplied by the caller (for a VM: a TCP socket
/// created inside the VM's network namespace), and connections are pooled and kept alive.
/// </summary>
public sealed partial class AgentClient : IDisposable
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new(AgentProtocol.JsonContentType);

    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(1);

    private readonly HttpClient _http;
    private readonly Func<CancellationToken, ValueTask<Stream>> _connect;
    private readonly string? _token;

    /// <summary>Creates a client.</summary>
    /// <param name="connect">Opens a new connected stream to the agent; called for every new pooled connection.</param>
    /// <param name="token">The VM's bearer token; null sends no Authorization header.</param>
    public AgentClient(Func<CancellationToken, ValueTask<Stream>> connect, string? token)
    {
        ArgumentNullException.ThrowIfNull(connect);
        _connect = connect;
        _token = token;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = (_, ct) => connect(ct),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        _http = new HttpClient(handler)
        {
            BaseAddress = new Uri($"http://{AgentProtocol.GuestAddress}:{AgentProtocol.Port}/"),
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (!string.IsNullOrEmpty(token))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    /// <summary>A client that connects over plain TCP to <paramref name="host"/>:<paramref name="port"/> (tests, host-mode agents).</summary>
    public static AgentClient ForTcp(string host, int port, string? token) =>
        new(async ct =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(host, port, ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }, token);

    /// <summary>GET /health.</summary>
    /// <exception cref="AgentException">The agent is unreachable or answered badly.</exception>
    public async Task<HealthResponse> HealthAsync(CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, AgentProtocol.Paths.Health.TrimStart('/'));
        using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync(response, AgentJsonContext.Default.HealthResponse, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Polls <c>GET /health</c> until it answers, with a short backoff. Refused or reset connections are expected
    /// while the VM boots and are retried; other failures are thrown at once.
    /// </summary>
    /// <exception cref="AgentException">With <see cref="AgentErrorReason.Timeout"/> when <paramref name="timeout"/> passes first.</exception>
    public async Task<HealthResponse> WaitUntilHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var delay = TimeSpan.FromMilliseconds(10);
        AgentException? last = null;
        while (!deadline.IsCancellationRequested)
        {
            // Cap each attempt: a SYN into a guest whose NIC is not up yet may hang far longer than the boot.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            attempt.CancelAfter(AttemptTimeout);
            try
            {
                return await HealthAsync(attempt.Token).ConfigureAwait(false);
            }
            catch (AgentException e) when (e.Reason == AgentErrorReason.Unreachable)
            {
                last = e;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last ??= new AgentException(AgentErrorReason.Unreachable, $"no answer within {AttemptTimeout.TotalSeconds:0.#} s");
                continue;
            }

            try
            {
                await Task.Delay(delay, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                break;
            }

            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 1.5, 200));
        }

        cancellationToken.ThrowIfCancellationRequested();
        throw new AgentException(AgentErrorReason.Timeout,
            $"agent not healthy within {timeout.TotalSeconds:0.#} s{(last is null ? "" : $": {last.Message}")}", innerException: last);
    }

    /// <summary>
    /// Runs a command (POST /exec) and copies its output to <paramref name="stdout"/> and <paramref name="stderr"/>
    /// as it arrives (null discards). Cancelling closes the connection, which makes the agent kill the process group.
    /// </summary>
    /// <returns>The exit status; a non-zero exit is a result, not an exception.</returns>
    /// <exception cref="AgentException">The call was refused or the stream broke.</exception>
    public async Task<ExecResult> ExecAsync(ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var message = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.Exec.TrimStart('/'))
        {
            Content = JsonBody(request, AgentJsonContext.Default.ExecRequest),
        };
        using var response = await SendAsync(message, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        if (response.Content.Headers.ContentType?.MediaType != AgentProtocol.FramesContentType)
        {
            throw new AgentException(AgentErrorReason.Protocol, $"exec answered {response.Content.Headers.ContentType}, not frames");
        }

        try
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                return await ExecFrames.CopyAsync(body, stdout, stderr, started: null, ending: null, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            throw new AgentException(AgentErrorReason.Protocol, $"exec stream broke: {e.Message}", innerException: e);
        }
    }

    /// <summary>POST /shutdown: the agent answers 202, then stops every process and powers the VM off.</summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.Shutdown.TrimStart('/'));
        using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // The guest's wall clock follows the host's through this header (the agent steps it when off by > 20 ms).
        request.Headers.TryAddWithoutValidation(AgentProtocol.HostTimeHeader, AgentProtocol.HostTimeNow());
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AgentException(AgentErrorReason.Unreachable, $"agent unreachable: {e.Message}", innerException: e);
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AgentException(AgentErrorReason.Unreachable, $"agent unreachable: {e.Message}", innerException: e);
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        AgentError? error = null;
        try
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            error = JsonSerializer.Deserialize(bytes, AgentJsonContext.Default.AgentError);
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException)
        {
        }

        var status = (int)response.StatusCode;
        var reason = status switch
        {
            401 => AgentErrorReason.Unauthorized,
            403 => AgentErrorReason.Forbidden,
            400 or 413 => AgentErrorReason.BadRequest,
            404 or 409 or 429 when error is not null => AgentErrorReason.Rejected,
            _ => AgentErrorReason.Protocol,
        };
        throw new AgentException(reason, $"agent answered {status}: {error?.Message ?? response.ReasonPhrase}", error?.Code);
    }

    private static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return Deserialize(bytes, typeInfo);
    }

    internal static T Deserialize<T>(ReadOnlyMemory<byte> json, JsonTypeInfo<T> typeInfo)
    {
        try
        {
            return JsonSerializer.Deserialize(json.Span, typeInfo)
                ?? throw new AgentException(AgentErrorReason.Protocol, $"agent sent null {typeof(T).Name}");
        }
        catch (JsonException e)
        {
            throw new AgentException(AgentErrorReason.Protocol, $"agent sent invalid {typeof(T).Name}: {e.Message}", innerException: e);
        }
    }

    private static ByteArrayContent JsonBody<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value, typeInfo));
        content.Headers.ContentType = JsonMediaType;
        return content;
    }
}
