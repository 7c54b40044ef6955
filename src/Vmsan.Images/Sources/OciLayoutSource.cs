using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Sources;

/// <summary>An OCI image layout directory (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/…</c>).</summary>
public class OciLayoutSource : IImageSource
{
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private readonly string _dir;
    private readonly string? _tag;

    public OciLayoutSource(string dir, string? tag, string name)
    {
        _dir = dir;
        _tag = tag;
        Name = name;
        if (!File.Exists(Path.Combine(dir, "index.json")) || !File.Exists(Path.Combine(dir, "oci-layout")))
            throw ImageErrors.Bad($"{name}: not an OCI image layout (no oci-layout and index.json in {dir}).");
    }

    public string Name { get; }

    public async Task<ResolvedImage> ResolveAsync(Platform platform, CancellationToken ct)
    {
        var index = Manifests.ParseIndex(await File.ReadAllBytesAsync(Path.Combine(_dir, "index.json"), ct).ConfigureAwait(false), Name);
        Descriptor entry;
        if (_tag is not null)
            entry = index.Manifests.FirstOrDefault(d => d.Annotations?.GetValueOrDefault(RefNameAnnotation) == _tag)
                    ?? throw ImageErrors.NotFound($"tag '{_tag}' in {Name}",
                        "tags here: " + string.Join(", ", index.Manifests.Select(d => d.Annotations?.GetValueOrDefault(RefNameAnnotation)).OfType<string>().DefaultIfEmpty("none")));
        else if (index.Manifests.Count == 1)
            entry = index.Manifests[0];
        else if (index.Manifests.All(d => d.Platform is not null))
            entry = Manifests.Select(index, platform, Name);
        else
            throw ImageErrors.Bad($"{Name} holds {index.Manifests.Count} images; name one as oci:DIR:TAG.");
        var fromIndex = false;
        for (var depth = 0; MediaTypes.IsIndex(entry.MediaType); depth++)
        {
            if (depth > 2)
                throw ImageErrors.Bad($"{Name}: indexes nested too deep.");
            entry = Manifests.Select(Manifests.ParseIndex(await ReadVerifiedAsync(entry, ct).ConfigureAwait(false), Name), platform, Name);
            fromIndex = true;
        }
        var bytes = await ReadVerifiedAsync(entry, ct).ConfigureAwait(false);
        return new ResolvedImage(entry.Digest, bytes, Manifests.ParseManifest(bytes, Name), fromIndex);
    }

    private async Task<byte[]> ReadVerifiedAsync(Descriptor d, CancellationToken ct)
    {
        var path = BlobPath(d.Digest);
        if (!File.Exists(path))
            throw ImageErrors.Bad($"{Name}: blob {d.Digest} is missing.");
        var bytes = await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        var actual = Digests.Of(bytes);
        if (actual != d.Digest)
            throw ImageErrors.DigestMismatch($"{Name}: blob {d.Digest}", d.Digest, actual);
        return bytes;
    }

    protected virtual string BlobPath(string digest) => Path.Combine(_dir, "blobs", "sha256", Digests.Hex(digest));

    public Task<BlobResponse> OpenBlobAsync(Descriptor blob, long offset, CancellationToken ct)
    {
        var path = BlobPath(blob.Digest);
        if (!File.Exists(path))
            throw ImageErrors.Bad($"{Name}: blob {blob.Digest} is missing.");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        fs.Position = Math.Min(offset, fs.Length);
        return Task.FromResult(new BlobResponse(fs, fs.Position));
    }

    public virtual void Dispose()
    {
        GC.SuppressFinalize(this);
    }

}
