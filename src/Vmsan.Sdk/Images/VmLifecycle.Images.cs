using Vmsan.Agent.Protocol;
using Vmsan.Core.State;
using Vmsan.Images;
using Vmsan.Images.Cache;
using Vmsan.Images.Model;
using Vmsan.Images.Sources;

namespace Vmsan;

/// <summary>A cached image as <c>vmsan images --json</c> prints it.</summary>
public sealed record ImageInfo
{
    /// <summary>The image's name (<c>docker.io/library/busybox:latest</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The manifest's digest (<c>sha256:…</c>).</summary>
    public required string ManifestDigest { get; init; }
    /// <summary>The platform pulled (<c>linux/amd64</c>).</summary>
    public required string Platform { get; init; }
    /// <summary>When it was pulled.</summary>
    public required DateTimeOffset PulledAt { get; init; }
    /// <summary>How many layers it has.</summary>
    public required int Layers { get; init; }
    /// <summary>Layer blobs as stored (compressed).</summary>
    public required long SizeBytes { get; init; }
    /// <summary>Whether its ext4 root is built (a create from it converts nothing).</summary>
    public required bool Converted { get; init; }
    /// <summary>The ext4 root's size, once converted.</summary>
    public long? RootfsBytes { get; init; }
    /// <summary>The image's Env, WorkingDir, User, Entrypoint and Cmd.</summary>
    public required ImageConfigInfo Config { get; init; }

    internal static ImageInfo From(ImageRecord r, ImageService cache)
    {
        var rootfs = cache.RootfsPath(r.ManifestDigest);
        var converted = File.Exists(rootfs);
        return new ImageInfo
        {
            Name = r.Name, ManifestDigest = r.ManifestDigest, Platform = r.Platform, PulledAt = r.PulledAt,
            Layers = r.Layers.Count, SizeBytes = r.SizeBytes, Converted = converted,
            RootfsBytes = converted ? new FileInfo(rootfs).Length : null, Config = ImageConfigInfo.From(r.Config),
        };
    }
}

/// <summary>An image config's exec defaults and exposed ports.</summary>
public sealed record ImageConfigInfo
{
    /// <summary><c>Env</c> (<c>NAME=value</c>).</summary>
    public IReadOnlyList<string>? Env { get; init; }
    /// <summary><c>WorkingDir</c>.</summary>
    public string? WorkingDir { get; init; }
    /// <summary><c>User</c>.</summary>
    public string? User { get; init; }
    /// <summary><c>Entrypoint</c>.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }
    /// <summary><c>Cmd</c>.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }
    /// <summary><c>ExposedPorts</c> (<c>80/tcp</c>).</summary>
    public IReadOnlyList<string>? ExposedPorts { get; init; }

    internal static ImageConfigInfo From(ImageDefaults d) => new()
    {
        Env = d.Env, WorkingDir = d.WorkingDir, User = d.User, Entrypoint = d.Entrypoint, Cmd = d.Cmd, ExposedPorts = d.ExposedPorts,
    };
}

/// <summary>What <c>images prune</c> deleted.</summary>
public sealed record PruneResult(int Blobs, int Rootfs, long Bytes);

internal sealed partial class VmLifecycle
{
    private ImageService? _imageCache;

    /// <summary>The image cache under <c>~/.vmsan/images</c>.</summary>
    internal ImageService ImageCache => _imageCache ??= new ImageService(_options.Paths.ImagesDir, _options.Commands,
        minimumRootfsBytes: CreateOptions.DefaultDiskMib * 1024L * 1024);

    public async Task<ImageInfo> PullImageAsync(string spec, PullOptions options, IPullProgress? progress, CancellationToken ct = default)
    {
        ImageSources.CanonicalName(spec);
        var rec = await ImageCache.PullAsync(spec, options, progress, ct).ConfigureAwait(false);
        return ImageInfo.From(rec, ImageCache);
    }

    public async Task<ImageRecord> ResolveImageAsync(string spec, PullOptions options, IPullProgress? progress, CancellationToken ct = default)
    {
        // Before anything is pulled: an image for another architecture would be pulled and converted only to fail at its first exec.
        BootablePlatform.Check(options.Platform);
        if (!ImageSources.IsTransport(spec) && ImageCache.Find(spec) is { } cached && cached.Platform == options.Platform.ToString()
            && File.Exists(ImageCache.Blobs.PathOf(cached.ManifestDigest)))
        {
            progress?.Phase($"{cached.Name} is cached ({cached.ManifestDigest[..19]})");
            return cached;
        }
        return await ImageCache.PullAsync(spec, options, progress, ct).ConfigureAwait(false);
    }

    public IReadOnlyList<ImageInfo> ListImages() => ImageCache.List().Select(r => ImageInfo.From(r, ImageCache)).ToList();

    public ImageInfo? FindImage(string spec) => ImageCache.Find(spec) is { } r ? ImageInfo.From(r, ImageCache) : null;

    public string RemoveImage(string spec) => ImageCache.Remove(spec).Name;

    public PruneResult PruneImages()
    {
        var inUse = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in _store.ListIds())
            if (_store.TryLoad(id) is { } rec)
                inUse.Add(rec.BaseImage);
        foreach (var snap in new Snapshots.SnapshotStore(_options.Paths).List())
            inUse.Add(snap.BaseImage);
        var (blobs, rootfs, bytes) = ImageCache.Prune(inUse);
        return new PruneResult(blobs, rootfs, bytes);
    }

    internal static VmImage ToVmImage(ImageRecord r) => new()
    {
        Name = r.Name,
        ManifestDigest = r.ManifestDigest,
        Env = r.Config.Env,
        WorkingDir = r.Config.WorkingDir,
        User = r.Config.User,
        Entrypoint = r.Config.Entrypoint,
        Cmd = r.Config.Cmd,
        ExposedPorts = r.Config.ExposedPorts,
    };

    private ExecRequest WithImageDefaults(string id, ExecRequest request) =>
        ImageExecDefaults.Apply(VmStore.IsValidId(id) ? _store.TryLoad(id)?.Image : null, request);
}

/// <summary>The image platforms a VM can boot: the host's architecture only.</summary>
internal static class BootablePlatform
{
    /// <summary>
    /// The guest kernel and the agent (PID 1 in every image) are linux/amd64 and nothing emulates another
    /// architecture inside the guest, so an arm64 image's programs could never run (ENOEXEC at the first exec):
    /// create and run refuse it up front. `images pull --platform` still caches any platform.
    /// </summary>
    public static void Check(Platform wanted)
    {
        var host = Manifests.Host;
        if (wanted.Os == host.Os && wanted.Architecture == host.Architecture)
            return;
        throw Core.Errors.VmsanException.Invalid(
            $"--platform {wanted}: VMs here boot {host} images only (the guest kernel and agent are {host}; no other architecture is emulated).",
            $"Create from the image's {host} entry (--platform {host}, the default); `vmsan images pull --platform {wanted} REF` still pulls the other one into the cache.");
    }
}

/// <summary>How an image's config shapes the execs of its VM.</summary>
internal static class ImageExecDefaults
{
    /// <summary>
    /// An image's Env, WorkingDir and User are the defaults of every exec in its VM: the request's
    /// own env entries win over the image's, and an explicit cwd or user over the image's.
    /// </summary>
    public static ExecRequest Apply(VmImage? image, ExecRequest request)
    {
        if (image is null)
            return request;
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in image.Env ?? [])
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                env[e[..eq]] = e[(eq + 1)..];
        }
        foreach (var (k, v) in request.Env ?? new Dictionary<string, string>())
            env[k] = v;
        return request with
        {
            Env = env,
            Cwd = string.IsNullOrEmpty(request.Cwd) ? image.WorkingDir : request.Cwd,
            User = string.IsNullOrEmpty(request.User) ? image.User : request.User,
        };
    }
}
