using System.Net.WebSockets;
using System.Text;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.WebSockets;

/// <summary>The server side of the RFC 6455 opening handshake, then the managed WebSocket over the detached connection.</summary>
internal static class WebSocketHandshake
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)).</summary>
    public static string AcceptKey(string clientKey) =>
        Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(clientKey.Trim() + Guid)));

    /// <summary>Null when the request is a valid upgrade, else why not.</summary>
    public static string? Validate(HttpRequest request)
    {
        if (request.Method != "GET")
        {
            return "WebSocket upgrades use GET";
        }

        if (!HasToken(request.GetHeader("Upgrade"), "websocket") || !HasToken(request.GetHeader("Connection"), "upgrade"))
        {
            return "expected Upgrade: websocket and Connection: Upgrade";
        }

        if (request.GetHeader("Sec-WebSocket-Version")?.Trim() != "13")
        {
            return "Sec-WebSocket-Version must be 13";
        }

        var key = request.GetHeader("Sec-WebSocket-Key")?.Trim();
        if (string.IsNullOrEmpty(key) || !IsNonce(key))
        {
            return "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce";
        }

        return request.HasBody ? "an upgrade request has no body" : null;
    }

    /// <summary>
    /// Answers a bad upgrade with 400 (426 without an Upgrade header) and returns null, or sends 101, takes the
    /// connection from the HTTP server and returns the server-side WebSocket.
    /// </summary>
    public static async ValueTask<WebSocket?> AcceptAsync(RequestContext context)
    {
        var problem = Validate(context.Request);
        if (problem is not null)
        {
            var status = context.Request.GetHeader("Upgrade") is null ? 426 : 400;
            await context.WriteErrorAsync(status, AgentErrorCodes.UpgradeRequired, problem,
                headers: status == 426 ? [new("Upgrade", "websocket")] : null).ConfigureAwait(false);
            return null;
        }

        var accept = AcceptKey(context.Request.GetHeader("Sec-WebSocket-Key")!);
        var stream = context.DetachConnection();
        var head = Encoding.ASCII.GetBytes(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Accept: {accept}\r\n\r\n");
        await stream.WriteAsync(head).ConfigureAwait(false);
        await stream.FlushAsync().ConfigureAwait(false);
        return WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
        {
            IsServer = true,
            // The agent notices dead peers through failed sends and TCP resets; pings keep NATs and idle proxies honest.
            KeepAliveInterval = TimeSpan.FromSeconds(30),
        });
    }

    private static bool IsNonce(string key)
    {
        Span<byte> buffer = stackalloc byte[24];
        return Convert.TryFromBase64String(key, buffer, out var n) && n == 16;
    }

    private static bool HasToken(string? header, string token)
    {
        if (header is null)
        {
            return false;
        }

        foreach (var part in header.Split(','))
        {
            if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
