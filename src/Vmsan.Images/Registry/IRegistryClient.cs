using Vmsan.Images.Reference;

namespace Vmsan.Images.Registry;

/// <summary>A manifest as served: its bytes (the digest covers exactly these), media type and digest.</summary>
public sealed record ManifestBlob(string MediaType, byte[] Content, string Digest);

/// <summary>An open blob body. <see cref="Offset"/> is where it starts: the asked offset when the server honoured the range, else 0.</summary>
public sealed class BlobResponse(Stream content, long offset) : IDisposable
{
    public Stream Content { get; } = content;

    public long Offset { get; } = offset;

    public void Dispose() => Content.Dispose();
}

/// <summary>The Registry HTTP API v2, as much of it as pulling needs.</summary>
public interface IRegistryClient
{
    /// <summary><c>GET /v2/REPO/manifests/REF</c> with the manifest types vmsan accepts.</summary>
    Task<ManifestBlob> GetManifestAsync(ImageReference image, string reference, CancellationToken ct);

    /// <summary><c>GET /v2/REPO/blobs/DIGEST</c>, from <paramref name="offset"/> when the server supports ranges.</summary>
    Task<BlobResponse> OpenBlobAsync(ImageReference image, string digest, long offset, CancellationToken ct);
}
