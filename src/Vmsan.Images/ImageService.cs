using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Images.Cache;
using Vmsan.Images.Ext4;
using Vmsan.Images.Layers;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;
using Vmsan.Images.Sources;

namespace Vmsan.Images;

/// <summary>How to pull: platform, plain-HTTP registries, credentials.</summary>
public sealed record PullOptions
{
    public Platform Platform { get; init; } = Manifests.Host;
    public bool InsecureRegistry { get; init; }
    public RegistryCredential? Credential { get; init; }
    /// <summary>Layer downloads at once.</summary>
    public int Parallelism { get; init; } = 3;
}

/// <summary>Pull progress: per blob (bytes done of total) and phase lines.</summary>
public interface IPullProgress
{
    void Blob(string digest, long done, long total);

    void Phase(string message);
}

/// <summary>
/// The image cache (<c>~/.vmsan/images</c>): pulls images from registries and archives into
/// content-addressed blobs, names them in <c>refs/</c>, and converts each manifest once into a
/// read-only ext4 root image under <c>rootfs/HEX/</c>.
/// </summary>
public sealed class ImageService
{
    private readonly string _root;
    private readonly ICommandRunner _runner;
    private readonly Func<PullOptions, IRegistryClient>? _registryFactory;
    private readonly long _minimumRootfsBytes;

    /// <param name="minimumRootfsBytes">The smallest root image a conversion writes: the default disk
    /// size, so a VM with the default disk boots with nothing to grow (see <see cref="Ext4Builder.SizeFor"/>).</param>
    public ImageService(string root, ICommandRunner? runner = null, Func<PullOptions, IRegistryClient>? registryFactory = null,
        long minimumRootfsBytes = 0)
    {
        _root = Path.GetFullPath(root);
        _minimumRootfsBytes = minimumRootfsBytes;
        _runner = runner ?? CommandRunner.Instance;
        _registryFactory = registryFactory;
        Blobs = new BlobStore(_root);
    }

    public BlobStore Blobs { get; }

    public string Root => _root;

    private string RefsDir => Path.Combine(_root, "refs");

    private string RootfsDir => Path.Combine(_root, "rootfs");

    private string TempDir => Path.Combine(_root, "tmp");

    private string RefPath(string name) =>
        Path.Combine(RefsDir, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..32] + ".json");

    public string RootfsPath(string manifestDigest) => Path.Combine(RootfsDir, Digests.Hex(manifestDigest), "rootfs.ext4");

    /// <summary>Pulls (or reads) the image and records it under its canonical name. Blobs already cached are not fetched again.</summary>
    public async Task<ImageRecord> PullAsync(string spec, PullOptions options, IPullProgress? progress, CancellationToken ct)
    {
        var registry = _registryFactory?.Invoke(options) ?? new RegistryClient(new RegistryClientOptions
        {
            InsecureRegistries = options.InsecureRegistry ? new HashSet<string> { "*" } : new HashSet<string>(),
            Credentials = new RegistryCredentials(options.Credential),
        });
        try
        {
            using var source = ImageSources.Open(spec, registry, TempDir);
            progress?.Phase($"resolving {source.Name} ({options.Platform})");
            var resolved = await source.ResolveAsync(options.Platform, ct).ConfigureAwait(false);
            var m = resolved.Manifest;
            var configPath = await Blobs.EnsureAsync(m.Config, (off, c) => source.OpenBlobAsync(m.Config, off, c), null, ct).ConfigureAwait(false);
            var config = ReadConfig(configPath, source.Name);
            if (!resolved.FromIndex && config.Os is { Length: > 0 } os && config.Architecture is { Length: > 0 } arch
                && (os != options.Platform.Os || arch != options.Platform.Architecture))
                throw ImageErrors.PlatformNotFound(source.Name, options.Platform.ToString(),
                    [new Platform { Os = os, Architecture = arch, Variant = config.Variant }.ToString()]);
            progress?.Phase($"{m.Layers.Count} layers, {m.Layers.Sum(l => l.Size) / 1048576.0:F1} MiB");
            await Parallel.ForEachAsync(m.Layers, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Parallelism), CancellationToken = ct },
                async (layer, c) => await Blobs.EnsureAsync(layer, (off, cc) => source.OpenBlobAsync(layer, off, cc),
                    progress is null ? null : progress.Blob, c).ConfigureAwait(false)).ConfigureAwait(false);
            // The manifest goes in last: a manifest in the cache means its blobs are there too.
            Blobs.Put(resolved.ManifestDigest, resolved.ManifestBytes);
            var record = new ImageRecord
            {
                Name = source.Name,
                ManifestDigest = resolved.ManifestDigest,
                ConfigDigest = m.Config.Digest,
                Platform = options.Platform.ToString(),
                PulledAt = DateTimeOffset.UtcNow,
                Layers = m.Layers.Select(l => l.Digest).ToList(),
                SizeBytes = m.Layers.Sum(l => l.Size),
                Config = DefaultsOf(config),
            };
            AtomicFile.Write(RefPath(record.Name), JsonSerializer.SerializeToUtf8Bytes(record, ImageCacheJsonContext.Default.ImageRecord),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            return record;
        }
        finally
        {
            (registry as IDisposable)?.Dispose();
        }
    }

    private static ImageConfigFile ReadConfig(string path, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ImageConfigJsonContext.Default.ImageConfigFile)
                   ?? throw ImageErrors.Bad($"{what}: empty image config.");
        }
        catch (JsonException ex)
        {
            throw ImageErrors.Bad($"{what}: the image config is not valid JSON ({ex.Message}).", ex);
        }
    }

    internal static ImageDefaults DefaultsOf(ImageConfigFile config) => new()
    {
        Env = config.Config?.Env,
        WorkingDir = string.IsNullOrEmpty(config.Config?.WorkingDir) ? null : config.Config.WorkingDir,
        User = string.IsNullOrEmpty(config.Config?.User) ? null : config.Config.User,
        Entrypoint = config.Config?.Entrypoint,
        Cmd = config.Config?.Cmd,
        ExposedPorts = config.Config?.ExposedPorts?.Keys.Order(StringComparer.Ordinal).ToList(),
    };

    /// <summary>The cached image named <paramref name="spec"/> (canonicalised), or null.</summary>
    public ImageRecord? Find(string spec)
    {
        var path = RefPath(ImageSources.CanonicalName(spec));
        return File.Exists(path) ? Load(path) : null;
    }

    private static ImageRecord? Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ImageCacheJsonContext.Default.ImageRecord);
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            return null;
        }
    }

    public IReadOnlyList<ImageRecord> List() =>
        !Directory.Exists(RefsDir)
            ? []
            : Directory.EnumerateFiles(RefsDir, "*.json").Select(Load).OfType<ImageRecord>().OrderBy(r => r.Name, StringComparer.Ordinal).ToList();

    public bool IsConverted(string manifestDigest) => File.Exists(RootfsPath(manifestDigest));

    /// <summary>
    /// The image's ext4 root, converting it on first use: layers applied in a temp directory,
    /// <c>mkfs.ext4 -d</c>, then one rename. A second call (or a concurrent one, which waits) converts nothing.
    /// </summary>
    public async Task<string> EnsureRootfsAsync(ImageRecord image, IPullProgress? progress, CancellationToken ct)
    {
        var final = RootfsPath(image.ManifestDigest);
        if (File.Exists(final))
            return final;
        var hex = Digests.Hex(image.ManifestDigest);
        Directory.CreateDirectory(RootfsDir);
        using var fileLock = await Task.Run(() => FileLock.Acquire(Path.Combine(Blobs.LocksDir, "rootfs-" + hex + ".lock"), TimeSpan.FromHours(1)), ct)
            .ConfigureAwait(false);
        if (File.Exists(final))
            return final;
        var manifestPath = Blobs.PathOf(image.ManifestDigest);
        if (!File.Exists(manifestPath))
            throw ImageErrors.NotFound($"manifest {image.ManifestDigest} of {image.Name} in the cache", "pull it again");
        var manifest = Manifests.ParseManifest(await File.ReadAllBytesAsync(manifestPath, ct).ConfigureAwait(false), image.Name);
        var work = Path.Combine(TempDir, $"rootfs-{hex[..12]}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..12]}");
        var tree = Path.Combine(work, "tree");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(work);
            var applier = new LayerApplier(tree);
            var i = 0;
            foreach (var layer in manifest.Layers)
            {
                i++;
                progress?.Phase($"applying layer {i}/{manifest.Layers.Count} {layer.Digest[..19]}");
                var path = Blobs.PathOf(layer.Digest);
                if (!File.Exists(path))
                    throw ImageErrors.NotFound($"layer {layer.Digest} of {image.Name} in the cache", "pull it again");
                await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 17);
                await Task.Run(() => applier.Apply(fs, MediaTypes.CompressionOf(layer.MediaType), $"{image.Name} layer {layer.Digest}"), ct)
                    .ConfigureAwait(false);
            }
            // The agent needs these as mount points; minimal images (scratch, busybox) lack some.
            foreach (var d in (string[])["proc", "sys", "dev", "tmp", "run", "etc"])
                if (!Directory.Exists(Path.Combine(tree, d)) && new FileInfo(Path.Combine(tree, d)).LinkTarget is null)
                    Directory.CreateDirectory(Path.Combine(tree, d));
            File.SetUnixFileMode(Path.Combine(tree, "tmp"), (UnixFileMode)0x3FF | UnixFileMode.StickyBit);
            var applyMs = clock.ElapsedMilliseconds;
            progress?.Phase("mkfs.ext4 -d");
            var ext4 = Path.Combine(work, "rootfs.ext4");
            var (size, content) = await Ext4Builder.BuildAsync(_runner, tree, ext4, _minimumRootfsBytes, ct).ConfigureAwait(false);
            File.SetUnixFileMode(ext4, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var mkfsMs = clock.ElapsedMilliseconds - applyMs;
            var info = new RootfsInfo
            {
                ManifestDigest = image.ManifestDigest, SizeBytes = size, ContentBytes = content, BuiltAt = DateTimeOffset.UtcNow,
                Config = image.Config, ApplyMs = applyMs, MkfsMs = mkfsMs,
            };
            AtomicFile.Write(Path.Combine(work, "image.json"), JsonSerializer.SerializeToUtf8Bytes(info, ImageCacheJsonContext.Default.RootfsInfo),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var removeStart = clock.ElapsedMilliseconds;
            Directory.Delete(tree, recursive: true);
            var removeMs = clock.ElapsedMilliseconds - removeStart;
            var finalDir = Path.GetDirectoryName(final)!;
            if (Directory.Exists(finalDir))
                Directory.Delete(finalDir, recursive: true); // a leftover without rootfs.ext4 (cannot be in use)
            Directory.Move(work, finalDir);
            // The conversion's own cost, apart from the pull before it and the boot after it
            // (bench/images compares it with tar -x + mkfs.ext4 -d by hand).
            progress?.Phase(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"converted to ext4 in {clock.ElapsedMilliseconds} ms (layers applied {applyMs} ms, mkfs.ext4 {mkfsMs} ms, tree removed {removeMs} ms, {applier.Entries} entries, {size / Ext4Builder.MiB} MiB image)"));
            return final;
        }
        finally
        {
            ImageSources.TryDelete(work);
        }
    }

    /// <summary>Forgets a name. Its blobs and root image stay until <see cref="Prune"/> (a VM may boot from it).</summary>
    public ImageRecord Remove(string spec)
    {
        var name = ImageSources.CanonicalName(spec);
        var path = RefPath(name);
        var rec = File.Exists(path) ? Load(path) : null;
        if (rec is null)
            throw ImageErrors.NotFound($"image {name} in the cache", "`vmsan images` lists the cached images");
        File.Delete(path);
        return rec;
    }

    /// <summary>Deletes blobs and root images no name refers to (except root images in <paramref name="inUse"/>), and leftovers of killed pulls.</summary>
    public (int Blobs, int Rootfs, long Bytes) Prune(IReadOnlySet<string> inUse)
    {
        var refs = List();
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in refs)
        {
            keep.Add(r.ManifestDigest);
            keep.Add(r.ConfigDigest);
            foreach (var l in r.Layers)
                keep.Add(l);
        }
        var keepRootfs = refs.Select(r => Digests.Hex(r.ManifestDigest)).ToHashSet(StringComparer.Ordinal);
        long bytes = 0;
        var rootfsRemoved = 0;
        if (Directory.Exists(RootfsDir))
            foreach (var dir in Directory.EnumerateDirectories(RootfsDir))
            {
                var hex = Path.GetFileName(dir);
                if (keepRootfs.Contains(hex) || inUse.Contains(Path.Combine(dir, "rootfs.ext4")))
                    continue;
                var f = Path.Combine(dir, "rootfs.ext4");
                bytes += File.Exists(f) ? new FileInfo(f).Length : 0;
                Directory.Delete(dir, recursive: true);
                rootfsRemoved++;
            }
        if (Directory.Exists(TempDir))
            foreach (var d in Directory.EnumerateFileSystemEntries(TempDir))
            {
                // Work directories of running conversions are younger than this.
                if (File.GetLastWriteTimeUtc(d) > DateTime.UtcNow.AddHours(-1))
                    continue;
                ImageSources.TryDelete(d);
            }
        var (removed, blobBytes) = Blobs.Prune(keep);
        return (removed, rootfsRemoved, bytes + blobBytes);
    }
}
