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
    private readonly byte[]? _token;

    /// <param name="token">The expected token; null or empty rejects every authenticated call.</param>
    public TokenAuthenticator(string? token) =>
        _token = string.IsNullOrEmpty(token) ? null : Encoding.UTF8.GetBytes(token);

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

        return _token is not null && FixedTimeEquals(presented, _token) ? AuthResult.Ok : AuthResult.Wrong;
    }

    /// <summary>Compares every byte of the expected token whatever the input, so timing reveals nothing but the length.</summary>
    internal static bool FixedTimeEquals(ReadOnlySpan<byte> presented, ReadOnlySpan<byte> expected)
    {
        var difference = presented.Length ^ expected.Length;
        for (var i = 0; i < expected.Length; i++)
        {
            var p = i < presented.Length ? presented[i] : (byte)0;
            difference |= p ^ expected[i];
        }

        return difference == 0;
    }
}
