using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Sources;

/// <summary>The manifest an image source resolved to, for one platform.</summary>
public sealed record ResolvedImage(string ManifestDigest, byte[] ManifestBytes, ImageManifest Manifest, bool FromIndex);

/// <summary>Where an image comes from: a registry, an OCI layout, or a <c>docker save</c> archive.</summary>
public interface IImageSource : IDisposable
{
    /// <summary>The name the image is cached under, e.g. <c>docker.io/library/node:22</c> or <c>oci:/abs/dir:tag</c>.</summary>
    string Name { get; }

    Task<ResolvedImage> ResolveAsync(Platform platform, CancellationToken ct);

    Task<BlobResponse> OpenBlobAsync(Descriptor blob, long offset, CancellationToken ct);
}
