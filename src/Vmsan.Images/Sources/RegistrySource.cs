using Vmsan.Images.Model;
using Vmsan.Images.Reference;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Sources;

/// <summary>An image in a registry: the reference's manifest, or, for an index, the entry for the platform.</summary>
public sealed class RegistrySource(IRegistryClient client, ImageReference reference) : IImageSource
{
    public string Name => reference.ToString();

    public ImageReference Reference => reference;

    public async Task<ResolvedImage> ResolveAsync(Platform platform, CancellationToken ct)
    {
        var m = await client.GetManifestAsync(reference, reference.ManifestReference, ct).ConfigureAwait(false);
        if (reference.Digest is { } pinned && m.Digest != pinned)
            throw ImageErrors.DigestMismatch($"manifest of {Name}", pinned, m.Digest);
        var fromIndex = false;
        for (var depth = 0; MediaTypes.IsIndex(m.MediaType); depth++)
        {
            if (depth > 2)
                throw ImageErrors.Bad($"{Name}: indexes nested too deep.");
            var entry = Manifests.Select(Manifests.ParseIndex(m.Content, Name), platform, Name);
            m = await client.GetManifestAsync(reference, entry.Digest, ct).ConfigureAwait(false);
            if (m.Digest != entry.Digest)
                throw ImageErrors.DigestMismatch($"manifest {entry.Digest} of {Name}", entry.Digest, m.Digest);
            fromIndex = true;
        }
        if (!MediaTypes.IsManifest(m.MediaType))
            throw ImageErrors.Bad($"{Name}: the registry served '{m.MediaType}', not an image manifest.");
        return new ResolvedImage(m.Digest, m.Content, Manifests.ParseManifest(m.Content, Name), fromIndex);
    }

    public Task<BlobResponse> OpenBlobAsync(Descriptor blob, long offset, CancellationToken ct) =>
        client.OpenBlobAsync(reference, blob.Digest, offset, ct);

    public void Dispose()
    {
    }
}
