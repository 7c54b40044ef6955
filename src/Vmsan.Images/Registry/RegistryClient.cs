using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using Polly;
using Polly.Retry;
using Vmsan.Images.Model;
using Vmsan.Images.Reference;

namespace Vmsan.Images.Registry;

public sealed record RegistryClientOptions
{
    /// <summary>Registries (host or host:port) spoken to over plain HTTP. <c>*</c> means every one.</summary>
    public IReadOnlySet<string> InsecureRegistries { get; init; } = new HashSet<string>();
    public RegistryCredentials Credentials { get; init; } = new();
    /// <summary>For tests: the handler that carries requests (default: sockets, system trust store).</summary>
    public HttpMessageHandler? Handler { get; init; }
    public int MaxRetries { get; init; } = 4;
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Bound on a manifest or token request (blob bodies are unbounded streams).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Registry HTTP API v2 over <see cref="HttpClient"/>: anonymous, bearer (the WWW-Authenticate
/// challenge → token service flow Docker Hub and GHCR use) and basic auth, retries with
/// exponential backoff on 429 and 5xx. HTTPS trusts the system store.
/// </summary>
public sealed class RegistryClient : IRegistryClient, IDisposable
{
    private readonly RegistryClientOptions _options;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;
    // Authorization header per (registry, scope), learnt from the first challenge.
    private readonly ConcurrentDictionary<string, AuthenticationHeaderValue> _auth = new();

    public RegistryClient(RegistryClientOptions? options = null)
    {
        _options = options ?? new RegistryClientOptions();
        var handler = _options.Handler ?? new SocketsHttpHandler
        {
            ConnectTimeout = _options.ConnectTimeout,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("vmsan/1");
        _retry = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(1, _options.MaxRetries),
                Delay = _options.RetryBaseDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result is { } r && IsTransient(r.StatusCode)),
                DelayGenerator = args =>
                {
                    // Honour a short Retry-After (a rate-limited registry says when to come back).
                    var ra = args.Outcome.Result?.Headers.RetryAfter?.Delta;
                    return ValueTask.FromResult<TimeSpan?>(ra is { } d && d <= TimeSpan.FromSeconds(30) ? d : null);
                },
            })
            .Build();
    }

    private static bool IsTransient(HttpStatusCode s) => s == HttpStatusCode.TooManyRequests || (int)s >= 500;

    public void Dispose() => _http.Dispose();

    private Uri BaseUri(ImageReference image)
    {
        var insecure = _options.InsecureRegistries.Contains("*") || _options.InsecureRegistries.Contains(image.Registry);
        return new Uri($"{(insecure ? "http" : "https")}://{image.ApiHost}/v2/");
    }

    public async Task<ManifestBlob> GetManifestAsync(ImageReference image, string reference, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.RequestTimeout);
        var uri = new Uri(BaseUri(image), $"{image.Repository}/manifests/{reference}");
        using var resp = await SendAsync(image, () =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (var a in MediaTypes.ManifestAccept)
                req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(a));
            return req;
        }, timeout.Token, ct).ConfigureAwait(false);
        await ThrowForStatusAsync(image, resp, $"{image.Registry}/{image.Repository}:{reference}", ct).ConfigureAwait(false);
        var bytes = await resp.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
        var digest = Digests.Of(bytes);
        var mediaType = resp.Content.Headers.ContentType?.MediaType;
        if (string.IsNullOrEmpty(mediaType) || !(MediaTypes.IsIndex(mediaType) || MediaTypes.IsManifest(mediaType)))
            mediaType = Manifests.SniffMediaType(bytes) ?? mediaType ?? "";
        return new ManifestBlob(mediaType, bytes, digest);
    }

    public async Task<BlobResponse> OpenBlobAsync(ImageReference image, string digest, long offset, CancellationToken ct)
    {
        var uri = new Uri(BaseUri(image), $"{image.Repository}/blobs/{digest}");
        var resp = await SendAsync(image, () =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, uri);
            if (offset > 0)
                req.Headers.Range = new RangeHeaderValue(offset, null);
            return req;
        }, ct, ct, headersOnly: true).ConfigureAwait(false);
        try
        {
            await ThrowForStatusAsync(image, resp, $"blob {digest} of {image.Registry}/{image.Repository}", ct).ConfigureAwait(false);
            var start = resp.StatusCode == HttpStatusCode.PartialContent ? resp.Content.Headers.ContentRange?.From ?? 0 : 0;
            var stream = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return new BlobResponse(new OwningStream(stream, resp), start);
        }
        catch
        {
            resp.Dispose();
            throw;
        }
    }

    private async Task<HttpResponseMessage> SendAsync(ImageReference image, Func<HttpRequestMessage> make, CancellationToken requestCt,
        CancellationToken userCt, bool headersOnly = false)
    {
        var scope = $"repository:{image.Repository}:pull";
        var key = $"{image.Registry} {scope}";
        var resp = await SendWithRetryAsync(image, make, key, requestCt, userCt, headersOnly).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Unauthorized)
            return resp;
        var challenge = AuthChallenge.Parse(resp.Headers.WwwAuthenticate.ToString());
        resp.Dispose();
        var cred = _options.Credentials.For(image.Registry);
        if (challenge is null)
            throw ImageErrors.AuthFailed(image.Registry, "401 without a WWW-Authenticate challenge");
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (cred is null)
                throw ImageErrors.AuthFailed(image.Registry, "it requires a user name and password and none was given");
            _auth[key] = BasicHeader(cred);
        }
        else if (challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            _auth[key] = new AuthenticationHeaderValue("Bearer",
                await FetchTokenAsync(image, challenge, challenge["scope"] ?? scope, cred, requestCt, userCt).ConfigureAwait(false));
        else
            throw ImageErrors.AuthFailed(image.Registry, $"unsupported authentication scheme '{challenge.Scheme}'");
        resp = await SendWithRetryAsync(image, make, key, requestCt, userCt, headersOnly).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.Unauthorized)
        {
            resp.Dispose();
            _auth.TryRemove(key, out _);
            throw ImageErrors.AuthFailed(image.Registry, cred is null
                ? $"anonymous access to {image.Repository} is denied (private, or no such repository)"
                : $"user '{cred.Username}' may not pull {image.Repository}");
        }
        return resp;
    }

    private static AuthenticationHeaderValue BasicHeader(RegistryCredential c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")));

    private async Task<string> FetchTokenAsync(ImageReference image, AuthChallenge challenge, string scope, RegistryCredential? cred,
        CancellationToken requestCt, CancellationToken userCt)
    {
        var realm = challenge["realm"];
        if (string.IsNullOrEmpty(realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
            throw ImageErrors.AuthFailed(image.Registry, $"the bearer challenge has no usable realm ('{realm}')");
        var query = new StringBuilder(realmUri.Query.TrimStart('?'));
        void Add(string k, string? v)
        {
            if (string.IsNullOrEmpty(v))
                return;
            if (query.Length > 0)
                query.Append('&');
            query.Append(k).Append('=').Append(Uri.EscapeDataString(v));
        }
        Add("service", challenge["service"]);
        Add("scope", scope);
        var uri = new UriBuilder(realmUri) { Query = query.ToString() }.Uri;
        using var resp = await Wrap(image, async () =>
        {
            return await _retry.ExecuteAsync(async token =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, uri);
                if (cred is not null)
                    req.Headers.Authorization = BasicHeader(cred);
                return await _http.SendAsync(req, token).ConfigureAwait(false);
            }, requestCt).ConfigureAwait(false);
        }, userCt).ConfigureAwait(false);
        if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw ImageErrors.AuthFailed(image.Registry, cred is null
                ? "the token service wants credentials"
                : $"the token service rejected user '{cred.Username}'");
        if (!resp.IsSuccessStatusCode)
            throw ImageErrors.AuthFailed(image.Registry, $"the token service answered {(int)resp.StatusCode}");
        TokenResponse? token;
        try
        {
            token = JsonSerializer.Deserialize(await resp.Content.ReadAsByteArrayAsync(requestCt).ConfigureAwait(false),
                ImageJsonContext.Default.TokenResponse);
        }
        catch (JsonException ex)
        {
            throw ImageErrors.AuthFailed(image.Registry, $"the token service's answer is not JSON ({ex.Message})");
        }
        return token?.Token ?? token?.AccessToken
               ?? throw ImageErrors.AuthFailed(image.Registry, "the token service's answer has no token");
    }

    private Task<HttpResponseMessage> SendWithRetryAsync(ImageReference image, Func<HttpRequestMessage> make, string authKey,
        CancellationToken requestCt, CancellationToken userCt, bool headersOnly) =>
        Wrap(image, async () => await _retry.ExecuteAsync(async token =>
        {
            using var req = make();
            if (_auth.TryGetValue(authKey, out var h))
                req.Headers.Authorization = h;
            return await _http.SendAsync(req, headersOnly ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead,
                token).ConfigureAwait(false);
        }, requestCt).ConfigureAwait(false), userCt);

    /// <summary>Turns transport failures into REGISTRY_UNREACHABLE (the user's own Ctrl-C stays a cancellation).</summary>
    private async Task<HttpResponseMessage> Wrap(ImageReference image, Func<Task<HttpResponseMessage>> send, CancellationToken userCt)
    {
        try
        {
            return await send().ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.InnerException is AuthenticationException)
        {
            throw ImageErrors.Unreachable(image.ApiHost, $"TLS failed ({ex.InnerException.Message}); if it speaks plain HTTP, pass --insecure-registry", ex);
        }
        catch (HttpRequestException ex)
        {
            throw ImageErrors.Unreachable(image.ApiHost, ex.InnerException?.Message ?? ex.Message, ex);
        }
        catch (OperationCanceledException ex) when (!userCt.IsCancellationRequested)
        {
            throw ImageErrors.Unreachable(image.ApiHost, "no answer in time", ex);
        }
    }

    private static async Task ThrowForStatusAsync(ImageReference image, HttpResponseMessage resp, string what, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode)
            return;
        string? detail = null;
        try
        {
            var body = await resp.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            if (body.Length is > 0 and < 65536)
            {
                var errs = JsonSerializer.Deserialize(body, ImageJsonContext.Default.RegistryErrors);
                detail = errs?.Errors is { Count: > 0 } e ? string.Join("; ", e.Select(x => $"{x.Code}: {x.Message}")) : null;
            }
        }
        catch (JsonException)
        {
        }
        switch (resp.StatusCode)
        {
            case HttpStatusCode.NotFound:
                throw ImageErrors.NotFound(what, detail ?? "404");
            case HttpStatusCode.Forbidden:
                throw ImageErrors.AuthFailed(image.Registry, detail ?? "403 forbidden");
            default:
                throw ImageErrors.Unreachable(image.ApiHost, $"{what}: HTTP {(int)resp.StatusCode}{(detail is null ? "" : " " + detail)}");
        }
    }

    /// <summary>A response body that disposes its response with it.</summary>
    private sealed class OwningStream(Stream inner, HttpResponseMessage owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
