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
internal sealed partial class AgentClient : IDisposable
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new(AgentProtocol.JsonContentType);

    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan MaxAttemptTimeout = TimeSpan.FromSeconds(8);

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

    /// <summary>How far the guest's wall clock may be from the host's before <see cref="SyncClockAsync"/> moves it.</summary>
    public static readonly TimeSpan ClockTolerance = TimeSpan.FromMilliseconds(20);

    /// <summary>How often a client re-measures the guest's clock (before its first call, then at most this often).</summary>
    public static readonly TimeSpan ClockResyncInterval = TimeSpan.FromSeconds(60);

    private long _clockSyncedAt = long.MinValue;

    /// <summary>
    /// Measures the guest's wall-clock offset with timed <c>GET /health</c> round trips (the best of up to three: the
    /// offset is the guest's time minus the midpoint of the round trip, so its error is at most half the shortest round
    /// trip) and, when it is over <see cref="ClockTolerance"/> and over that error, moves the guest's clock by it with
    /// <c>POST /clock</c>.
    /// Returns the measured offset (guest − host), or null when the agent does not report its time.
    /// </summary>
    /// <exception cref="AgentException">The agent is unreachable or refused.</exception>
    public async Task<TimeSpan?> SyncClockAsync(CancellationToken cancellationToken = default)
    {
        long? bestOffset = null;
        var bestRtt = long.MaxValue;
        for (var i = 0; i < 3 && bestRtt > 10_000_000; i++)
        {
            var t0 = NowNs();
            var health = await HealthAsync(cancellationToken).ConfigureAwait(false);
            var t1 = NowNs();
            if (health.TimeNs is not { } guest)
            {
                return null;
            }

            if (t1 - t0 < bestRtt)
            {
                bestRtt = t1 - t0;
                bestOffset = guest - ((t0 + t1) / 2);
            }
        }

        var offset = bestOffset!.Value;
        // The measurement is off by up to half the round trip (the guest may stamp its time anywhere inside it); under
        // load a round trip can take hundreds of ms. Moving the clock by less than that would as likely make it worse.
        if (Math.Abs(offset) > Math.Max(ClockTolerance.Ticks * 100, bestRtt / 2))
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.Clock.TrimStart('/'))
            {
                Content = JsonBody(new ClockAdjustRequest(-offset), AgentJsonContext.Default.ClockAdjustRequest),
            };
            using var response = await SendCoreAsync(message, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        }

        return TimeSpan.FromTicks(offset / 100);
    }

    private static long NowNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>
    /// Before the first authenticated call of this client, and then at most every <see cref="ClockResyncInterval"/>:
    /// <see cref="SyncClockAsync"/>. Never fails the caller's request (a failed sync is retried next time).
    /// </summary>
    private async ValueTask KeepClockInStepAsync(string? path, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_token) || path is null || path.StartsWith(AgentProtocol.Paths.Health.TrimStart('/'), StringComparison.Ordinal)
            || path.StartsWith(AgentProtocol.Paths.Clock.TrimStart('/'), StringComparison.Ordinal))
        {
            return;
        }

        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _clockSyncedAt);
        if (last != long.MinValue && now - last < (long)ClockResyncInterval.TotalMilliseconds)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _clockSyncedAt, now, last) != last)
        {
            return;
        }

        try
        {
            await SyncClockAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException or HttpRequestException or IOException or System.Text.Json.JsonException)
        {
            Interlocked.Exchange(ref _clockSyncedAt, long.MinValue);
        }
    }

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
        var attemptTimeout = AttemptTimeout;
        AgentException? last = null;
        while (!deadline.IsCancellationRequested)
        {
            // Cap each attempt: a SYN into a guest whose NIC is not up yet may hang far longer than the boot. Each
            // attempt cut short doubles the next one's cap (to 8 s): with 16 TCG boots at once at load 26 an agent
            // printed its ready marker and then no 1 s attempt got an answer within the 30 s that follow it.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            attempt.CancelAfter(attemptTimeout);
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
                last ??= new AgentException(AgentErrorReason.Unreachable, $"no answer within {attemptTimeout.TotalSeconds:0.#} s");
                attemptTimeout = TimeSpan.FromTicks(Math.Min(attemptTimeout.Ticks * 2, MaxAttemptTimeout.Ticks));
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

    /// <summary>Gives a freshly resumed snapshot clone its own token, hostname, entropy and clock (POST /rekey).</summary>
    public async Task RekeyAsync(RekeyRequest rekey, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, AgentProtocol.Paths.Rekey.TrimStart('/'))
        {
            Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(rekey, AgentJsonContext.Default.RekeyRequest),
                System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await KeepClockInStepAsync(request.RequestUri?.OriginalString, cancellationToken).ConfigureAwait(false);
        return await SendCoreAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendCoreAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
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
        var reason = AgentStatus.ReasonFor(status, error?.Code);
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
