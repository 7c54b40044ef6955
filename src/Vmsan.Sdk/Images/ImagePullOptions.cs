using Vmsan.Images;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan;

/// <summary>How an image is pulled (<see cref="VmsanClient.PullImageAsync"/>, <see cref="CreateOptions.FromImage"/>).</summary>
public sealed record ImagePullOptions
{
    /// <summary><c>OS/ARCH[/VARIANT]</c> (<c>linux/arm64</c>); null: this host's.</summary>
    public string? Platform { get; init; }

    /// <summary>Talk plain HTTP to the registry (a local registry without TLS).</summary>
    public bool InsecureRegistry { get; init; }

    /// <summary>The registry user (with <see cref="Password"/>); null: <c>~/.docker/config.json</c>, else anonymous.</summary>
    public string? Username { get; init; }

    /// <summary>The registry password or token for <see cref="Username"/>.</summary>
    public string? Password { get; init; }

    /// <summary>Layer downloads at once.</summary>
    public int Parallelism { get; init; } = 3;

    /// <summary>The image code's options; INVALID_ARGUMENT for a malformed platform or half a credential.</summary>
    internal PullOptions ToPullOptions()
    {
        if ((Username is null) != (Password is null))
            throw Core.Errors.VmsanException.Invalid("A registry user and password go together.", "Set both Username and Password, or neither.");
        if (Parallelism < 1)
            throw Core.Errors.VmsanException.Invalid($"Parallelism must be at least 1 (got {Parallelism}).", "Leave it at 3 or set a positive number.");
        return new PullOptions
        {
            Platform = Platform is { } p ? Manifests.ParsePlatform(p) : Manifests.Host,
            InsecureRegistry = InsecureRegistry,
            Credential = Username is { } u ? new RegistryCredential(u, Password!) : null,
            Parallelism = Parallelism,
        };
    }
}

/// <summary>Where an image pull reports progress: bytes per blob and phase lines (conversion, cache hits).</summary>
public interface IImagePullProgress
{
    /// <summary>A blob's download: <paramref name="done"/> of <paramref name="total"/> bytes (total 0: not known yet).</summary>
    /// <param name="digest">The blob's digest.</param>
    /// <param name="done">Bytes so far.</param>
    /// <param name="total">The blob's size.</param>
    void Blob(string digest, long done, long total);

    /// <summary>A phase of the pull or of the conversion to a root filesystem.</summary>
    /// <param name="message">What happens now.</param>
    void Phase(string message);
}

/// <summary>The SDK's progress interface seen by the image code.</summary>
internal sealed class PullProgressAdapter(IImagePullProgress inner) : IPullProgress
{
    public static IPullProgress? For(IImagePullProgress? p) => p is null ? null : new PullProgressAdapter(p);

    public void Blob(string digest, long done, long total) => inner.Blob(digest, done, total);

    public void Phase(string message) => inner.Phase(message);
}
