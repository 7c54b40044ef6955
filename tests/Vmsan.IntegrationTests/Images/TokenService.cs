using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests.Images;

/// <summary>
/// A small bearer-token service for the registry's token auth (the flow Docker Hub and GHCR use):
/// the registry answers 401 with <c>WWW-Authenticate: Bearer realm=…,service=…,scope=…</c>, the client
/// asks this service for a token for that scope, and presents it. Tokens are ES256 JWTs carrying
/// their self-signed certificate (x5c), which the registry trusts as its root bundle.
/// </summary>
public sealed class TokenService : IAsyncDisposable
{
    public const string Service = "vmsan-test-registry";
    public const string Issuer = "vmsan-test-issuer";
    private readonly Socket _listener;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _cert;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;
    private int _issued;

    private TokenService(Socket listener)
    {
        _listener = listener;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var req = new CertificateRequest("CN=vmsan test token issuer", _key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        _cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _loop = Task.Run(AcceptLoop);
    }

    public int Port { get; }

    /// <summary>Tokens handed out so far.</summary>
    public int Issued => Volatile.Read(ref _issued);

    public string CertificatePem => _cert.ExportCertificatePem();

    /// <summary>The registry config's <c>auth:</c> block for this service.</summary>
    public string AuthYaml(string certPath) => $"""
        auth:
          token:
            realm: http://127.0.0.1:{Port}/token
            service: {Service}
            issuer: {Issuer}
            rootcertbundle: {certPath}
        """;

    public static async Task<TokenService> StartAsync(string ns) =>
        new(await NamespaceSockets.ListenAsync(ns, new IPEndPoint(IPAddress.Loopback, 0)));

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync(_cts.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => Serve(s));
        }
    }

    private async Task Serve(Socket s)
    {
        using (s)
        {
            try
            {
                var head = new StringBuilder();
                var buf = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await s.ReceiveAsync(buf, SocketFlags.None, _cts.Token);
                    if (n == 0)
                        return;
                    head.Append(Encoding.ASCII.GetString(buf, 0, n));
                }
                var target = head.ToString().Split(' ')[1];
                var query = target.Contains('?') ? target[(target.IndexOf('?') + 1)..] : "";
                var access = new JsonArray();
                foreach (var kv in query.Split('&'))
                {
                    var eq = kv.IndexOf('=');
                    if (eq < 0 || kv[..eq] != "scope")
                        continue;
                    // repository:NAME:ACTIONS (NAME may hold no colon; ACTIONS comma separated)
                    var parts = Uri.UnescapeDataString(kv[(eq + 1)..].Replace('+', ' ')).Split(':');
                    if (parts.Length == 3)
                        access.Add(new JsonObject { ["type"] = parts[0], ["name"] = parts[1], ["actions"] = new JsonArray([.. parts[2].Split(',').Select(a => (JsonNode)a)]) });
                }
                var token = Jwt(access);
                Interlocked.Increment(ref _issued);
                var body = Encoding.UTF8.GetBytes(new JsonObject { ["token"] = token, ["expires_in"] = 300 }.ToJsonString());
                await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), SocketFlags.None);
                await s.SendAsync(body, SocketFlags.None);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IndexOutOfRangeException)
            {
            }
        }
    }

    private static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private string Jwt(JsonArray access)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "ES256", ["x5c"] = new JsonArray(Convert.ToBase64String(_cert.RawData)) };
        var claims = new JsonObject
        {
            ["iss"] = Issuer, ["sub"] = "tester", ["aud"] = Service, ["exp"] = now + 300, ["nbf"] = now - 30, ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
        };
        var signingInput = B64(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        return signingInput + "." + B64(_key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256));
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _listener.Dispose();
        await _loop;
        _cts.Dispose();
        _cert.Dispose();
        _key.Dispose();
    }
}
