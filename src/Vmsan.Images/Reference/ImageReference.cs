using System.Text.RegularExpressions;
using Vmsan.Core.Errors;

namespace Vmsan.Images.Reference;

/// <summary>
/// A registry image reference, normalised the way Docker does it: <c>node</c> is
/// <c>docker.io/library/node:latest</c>, <c>ghcr.io/org/app@sha256:…</c> keeps its digest, and a
/// first component with a dot, a colon (port) or the name <c>localhost</c> is a registry host.
/// </summary>
public sealed partial record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    public const string DockerHub = "docker.io";

    /// <summary>The tag or, when the reference pins one, the digest: what <c>GET /v2/REPO/manifests/X</c> asks for.</summary>
    public string ManifestReference => Digest ?? Tag ?? "latest";

    /// <summary>The host the Registry API answers on (Docker Hub's API is not on docker.io itself).</summary>
    public string ApiHost => Registry == DockerHub ? "registry-1.docker.io" : Registry;

    /// <summary>The fully qualified form, e.g. <c>docker.io/library/node:22-alpine</c>.</summary>
    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    /// <summary>The same repository at another tag or digest.</summary>
    public ImageReference WithDigest(string digest) => this with { Digest = digest };

    public static bool TryParse(string text, out ImageReference? reference, out string? error)
    {
        reference = null;
        error = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "the reference is empty";
            return false;
        }
        if (text.Length > 512 || text.Any(char.IsWhiteSpace))
        {
            error = "a reference has no whitespace and is at most 512 characters";
            return false;
        }
        var rest = text;
        string? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (!DigestPattern().IsMatch(digest))
            {
                error = $"'{digest}' is not a digest (sha256: and 64 hex digits)";
                return false;
            }
            digest = digest.ToLowerInvariant();
        }
        string? tag = null;
        var lastColon = rest.LastIndexOf(':');
        if (lastColon >= 0 && rest.IndexOf('/', lastColon) < 0)
        {
            tag = rest[(lastColon + 1)..];
            rest = rest[..lastColon];
            if (!TagPattern().IsMatch(tag))
            {
                error = $"'{tag}' is not a tag (letters, digits, '_', '.', '-'; at most 128)";
                return false;
            }
        }
        string registry;
        string path;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? null : rest[..slash];
        // Docker's rule: the first component is a host when it has a dot or a port, is
        // "localhost", or has upper case letters (repository paths never do).
        if (first is not null && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal)
                                  || first == "localhost" || first.Any(char.IsUpper)))
        {
            registry = first;
            path = rest[(slash + 1)..];
            if (!HostPattern().IsMatch(registry))
            {
                error = $"'{registry}' is not a registry host (host or host:port)";
                return false;
            }
        }
        else
        {
            registry = DockerHub;
            path = rest;
        }
        if (registry is "index.docker.io" or "registry-1.docker.io")
            registry = DockerHub;
        if (registry == DockerHub && !path.Contains('/', StringComparison.Ordinal))
            path = "library/" + path;
        if (path.Length == 0 || path.Length > 255 || !path.Split('/').All(c => ComponentPattern().IsMatch(c)))
        {
            error = $"'{path}' is not a repository name (lower-case components separated by '/')";
            return false;
        }
        if (tag is null && digest is null)
            tag = "latest";
        reference = new ImageReference(registry, path, tag, digest);
        return true;
    }

    /// <summary>Parses and normalises; throws INVALID_ARGUMENT with the reason.</summary>
    public static ImageReference Parse(string text)
    {
        if (TryParse(text, out var r, out var error))
            return r!;
        throw VmsanException.Invalid($"'{text}' is not an image reference: {error}.",
            "Write it like node:22, ghcr.io/org/app@sha256:<64 hex>, or localhost:5000/team/app:1.2.");
    }

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex("^sha256:[a-fA-F0-9]{64}$")]
    internal static partial Regex DigestPattern();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")]
    private static partial Regex HostPattern();
}
