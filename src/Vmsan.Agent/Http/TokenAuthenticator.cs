using System.Security.Cryptography;
using System.Text;

namespace Vmsan.Agent.Http;

internal enum AuthResult
{
    Ok,
    Missing,
    Wrong,
}

/// <summary>Bearer token check in constant time (no System.Security.Cryptography: it needs OpenSSL in a static binary).</summary>
internal sealed class TokenAuthenticator
{
    private volatile byte[]? _token;

    /// <param name="token">The expected token; null or empty rejects every authenticated call.</param>
    public TokenAuthenticator(string? token) =>
        _token = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);

    /// <summary>Swaps the token (a snapshot clone's re-key): from now on only the new one is accepted.</summary>
    public void Replace(string token) => _token = Encoding.UTF8.GetBytes(token);

    public AuthResult Check(string? authorization)
    {
        const string Scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return AuthResult.Missing;
        }

        var presented = Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim());
        if (presented.Length == 0)
        {
            return AuthResult.Missing;
        }

        // Constant time over the token's bytes; a wrong length is refused at once, which tells only
        // what every client knows already (tokens are 64 hex digits).
        return _token is not null && CryptographicOperations.FixedTimeEquals(presented, _token) ? AuthResult.Ok : AuthResult.Wrong;
    }
}
