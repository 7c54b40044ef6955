using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Vmsan.UnitTests.Images;

/// <summary>
/// An in-process Registry API v2 (as an HttpMessageHandler) for the protocol's fine-grained cases:
/// auth challenges, retries, ranges, broken and corrupt streams. The real registry is exercised by
/// the integration tests.
/// </summary>
internal sealed class FakeRegistry : HttpMessageHandler
{
    public readonly Dictionary<string, (string MediaType, byte[] Body)> Manifests = new();
    public readonly Dictionary<string, byte[]> Blobs = new();
    public readonly ConcurrentDictionary<string, int> BlobGets = new();
    public string? BasicUser;
    public string? BasicPassword;
    public bool Bearer;
    public int FailFirst503;
    public int Fail429;
    /// <summary>Blob digest → after how many bytes its first response breaks (IOException).</summary>
    public readonly Dictionary<string, int> BreakAfter = new();
    public readonly Dictionary<string, int> TruncateTo = new();
    public readonly Dictionary<string, byte[]> CorruptBlob = new();
    public readonly List<string> Log = [];
    public TimeSpan BlobDelay = TimeSpan.Zero;
    private int _tokens;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var path = request.RequestUri!.AbsolutePath;
        lock (Log)
            Log.Add($"{request.Method} {request.RequestUri.PathAndQuery} {request.Headers.Authorization?.Scheme}");
        if (path == "/token")
        {
            var auth = request.Headers.Authorization;
            if (BasicUser is not null && (auth?.Parameter is not { } p || Encoding.UTF8.GetString(Convert.FromBase64String(p)) != $"{BasicUser}:{BasicPassword}"))
                return new HttpResponseMessage(HttpStatusCode.Unauthorized);
            Interlocked.Increment(ref _tokens);
            return Json("{\"token\":\"tok-" + request.RequestUri.Query.Contains("scope=repository", StringComparison.Ordinal) + "\"}");
        }
        if (Interlocked.Decrement(ref FailFirst503) >= 0)
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        if (Interlocked.Decrement(ref Fail429) >= 0)
        {
            var r = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
            r.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromMilliseconds(10));
            return r;
        }
        if (Bearer && request.Headers.Authorization is not { Scheme: "Bearer", Parameter: "tok-True" })
        {
            var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            r.Headers.WwwAuthenticate.ParseAdd($"Bearer realm=\"http://{request.RequestUri.Authority}/token\",service=\"fake\",scope=\"repository:x:pull\"");
            return r;
        }
        if (!Bearer && BasicUser is not null)
        {
            var a = request.Headers.Authorization;
            if (a is not { Scheme: "Basic" } || Encoding.UTF8.GetString(Convert.FromBase64String(a.Parameter!)) != $"{BasicUser}:{BasicPassword}")
            {
                var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
                r.Headers.WwwAuthenticate.ParseAdd("Basic realm=\"fake\"");
                return r;
            }
        }
        var parts = path.Split('/');
        // /v2/<repo...>/manifests/<ref> or /blobs/<digest>
        var kind = parts[^2];
        var reference = parts[^1];
        if (kind == "manifests")
        {
            if (!Manifests.TryGetValue(reference, out var m))
                return Json("{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}", HttpStatusCode.NotFound);
            var resp = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(m.Body) };
            resp.Content.Headers.ContentType = new MediaTypeHeaderValue(m.MediaType);
            return resp;
        }
        if (kind == "blobs")
        {
            if (!Blobs.TryGetValue(reference, out var body))
                return Json("{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown\"}]}", HttpStatusCode.NotFound);
            var n = BlobGets.AddOrUpdate(reference, 1, (_, v) => v + 1);
            if (BlobDelay > TimeSpan.Zero)
                await Task.Delay(BlobDelay, ct);
            if (CorruptBlob.TryGetValue(reference, out var corrupt))
                body = corrupt;
            if (TruncateTo.TryGetValue(reference, out var t))
                body = body[..t];
            long offset = request.Headers.Range?.Ranges.First().From ?? 0;
            var slice = body[(int)offset..];
            Stream content = new MemoryStream(slice);
            if (n == 1 && BreakAfter.TryGetValue(reference, out var after))
                content = new BreakingStream(slice, after);
            var resp = new HttpResponseMessage(offset > 0 ? HttpStatusCode.PartialContent : HttpStatusCode.OK) { Content = new StreamContent(content) };
            if (offset > 0)
                resp.Content.Headers.ContentRange = new ContentRangeHeaderValue(offset, body.Length - 1, body.Length);
            return resp;
        }
        return new HttpResponseMessage(HttpStatusCode.NotFound);
    }

    public int Tokens => _tokens;

    private static HttpResponseMessage Json(string json, HttpStatusCode status = HttpStatusCode.OK) =>
        new(status) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    private sealed class BreakingStream(byte[] data, int after) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (Position >= after)
                throw new IOException("connection reset (test)");
            return base.Read(buffer, offset, (int)Math.Min(count, after - Position));
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= after)
                throw new IOException("connection reset (test)");
            return base.ReadAsync(buffer[..(int)Math.Min(buffer.Length, after - Position)], cancellationToken);
        }
    }
}
