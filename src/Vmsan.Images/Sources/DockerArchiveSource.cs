using System.Security.Cryptography;
using System.Text.Json;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Sources;

/// <summary>
/// <c>docker save</c> output, unpacked to a directory: <c>manifest.json</c> names the config and the
/// layer tars. Such an archive carries no registry manifest, so vmsan writes an OCI manifest for
/// it (config and layer digests computed from the files), and caches the image by that digest.
/// </summary>
public sealed class DockerArchiveSource(string dir, string? tag, string name, Action? onDispose) : IImageSource
{
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);

    public string Name => name;

    public async Task<ResolvedImage> ResolveAsync(Platform platform, CancellationToken ct)
    {
        var manifestPath = Path.Combine(dir, "manifest.json");
        if (!File.Exists(manifestPath))
            throw ImageErrors.Bad($"{Name}: not a docker-archive (no manifest.json).");
        List<DockerArchiveEntry>? entries;
        try
        {
            entries = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(manifestPath, ct).ConfigureAwait(false),
                ImageConfigJsonContext.Default.ListDockerArchiveEntry);
        }
        catch (JsonException ex)
        {
            throw ImageErrors.Bad($"{Name}: manifest.json is not a docker-archive manifest ({ex.Message}).", ex);
        }
        if (entries is null || entries.Count == 0)
            throw ImageErrors.Bad($"{Name}: manifest.json lists no image.");
        var entry = tag is null
            ? entries.Count == 1 ? entries[0] : throw ImageErrors.Bad($"{Name} holds {entries.Count} images; name one as docker-archive:FILE:REPO:TAG.")
            : entries.FirstOrDefault(e => e.RepoTags?.Contains(tag) == true)
              ?? throw ImageErrors.NotFound($"'{tag}' in {Name}", "tags here: " + string.Join(", ", entries.SelectMany(e => e.RepoTags ?? []).DefaultIfEmpty("none")));
        var config = await DescribeAsync(entry.Config, MediaTypes.OciConfig, ct).ConfigureAwait(false);
        var layers = new List<Descriptor>();
        foreach (var l in entry.Layers)
            layers.Add(await DescribeAsync(l, null, ct).ConfigureAwait(false));
        var manifest = new ImageManifest { SchemaVersion = 2, MediaType = MediaTypes.OciManifest, Config = config, Layers = layers };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest, ImageJsonContext.Default.ImageManifest);
        return new ResolvedImage(Digests.Of(bytes), bytes, manifest, false);
    }

    private async Task<Descriptor> DescribeAsync(string relative, string? mediaType, CancellationToken ct)
    {
        var full = Path.GetFullPath(Path.Combine(dir, relative));
        if (!full.StartsWith(Path.GetFullPath(dir) + "/", StringComparison.Ordinal) || !File.Exists(full))
            throw ImageErrors.Bad($"{Name}: manifest.json names '{relative}', which is not in the archive.");
        string digest;
        long size;
        byte[] head = new byte[4];
        await using (var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous))
        {
            size = fs.Length;
            var n = await fs.ReadAtLeastAsync(head, 4, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            Array.Resize(ref head, n);
            fs.Position = 0;
            digest = "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false));
        }
        _files[digest] = full;
        return new Descriptor { MediaType = mediaType ?? SniffLayer(head), Digest = digest, Size = size };
    }

    /// <summary>Older docker save writes plain tars, newer ones may keep the registry's compressed blobs.</summary>
    internal static string SniffLayer(ReadOnlySpan<byte> head) =>
        head is [0x1f, 0x8b, ..] ? MediaTypes.OciLayerGzip
        : head is [0x28, 0xb5, 0x2f, 0xfd, ..] ? MediaTypes.OciLayerZstd
        : MediaTypes.OciLayer;

    public Task<BlobResponse> OpenBlobAsync(Descriptor blob, long offset, CancellationToken ct)
    {
        if (!_files.TryGetValue(blob.Digest, out var path))
            throw ImageErrors.Bad($"{Name}: no file for {blob.Digest}.");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        fs.Position = Math.Min(offset, fs.Length);
        return Task.FromResult(new BlobResponse(fs, fs.Position));
    }

    public void Dispose() => onDispose?.Invoke();

}
