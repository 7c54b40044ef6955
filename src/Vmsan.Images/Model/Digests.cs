using System.Security.Cryptography;
using Vmsan.Images.Reference;

namespace Vmsan.Images.Model;

public static class Digests
{
    public static string Of(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The hex part of a sha256 digest, checked (it becomes a file name, so nothing else may pass).</summary>
    public static string Hex(string digest)
    {
        if (!ImageReference.DigestPattern().IsMatch(digest))
            throw ImageErrors.Bad($"'{digest}' is not a sha256 digest (only sha256 is supported).");
        return digest[7..].ToLowerInvariant();
    }
}
