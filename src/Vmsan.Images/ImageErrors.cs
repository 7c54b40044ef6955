using Vmsan.Core.Errors;

namespace Vmsan.Images;

/// <summary>The image subsystem's expected failures, each a typed <see cref="VmsanException"/> with a fix hint.</summary>
public static class ImageErrors
{
    public static VmsanException NotFound(string what, string? detail = null) =>
        new(ErrorCode.ImageNotFound, $"{what} was not found{(detail is null ? "" : $" ({detail})")}.",
            "Check the repository name and tag (`vmsan images` lists what is cached); private repositories need credentials.");

    public static VmsanException Unreachable(string registry, string reason, Exception? inner = null) =>
        new(ErrorCode.RegistryUnreachable, $"Cannot reach the registry {registry}: {reason}.",
            "Check the registry's name and the network; a plain-HTTP registry needs --insecure-registry.", inner);

    public static VmsanException AuthFailed(string registry, string reason) =>
        new(ErrorCode.RegistryAuthFailed, $"The registry {registry} refused the credentials: {reason}.",
            "Log in with --registry-user NAME --registry-password-stdin, or put the registry in ~/.docker/config.json `auths`.");

    public static VmsanException PlatformNotFound(string image, string wanted, IEnumerable<string> offered) =>
        new(ErrorCode.PlatformNotFound, $"{image} has no manifest for {wanted}; it offers: {string.Join(", ", offered.DefaultIfEmpty("nothing"))}.",
            "Pass --platform with one of the platforms offered (vmsan runs linux/amd64 guests).");

    public static VmsanException DigestMismatch(string what, string expected, string actual) =>
        new(ErrorCode.DigestMismatch, $"{what}: expected {expected}, got {actual}; nothing was kept.",
            "The registry or the file served corrupt content; retry, or check the source of the image.");

    public static VmsanException Bad(string message, Exception? inner = null) =>
        new(ErrorCode.BadImage, message, "This is not a usable OCI/Docker image; check the archive or the reference.", inner);
}
