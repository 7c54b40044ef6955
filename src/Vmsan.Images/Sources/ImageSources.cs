using System.Formats.Tar;
using Vmsan.Images.Reference;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Sources;

/// <summary>
/// Turns what the user wrote after <c>--from-image</c> into a source: <c>docker-archive:FILE[:REPO:TAG]</c>,
/// <c>oci:DIR[:TAG]</c>, <c>oci-archive:FILE[:TAG]</c>, or a registry reference.
/// </summary>
public static class ImageSources
{
    public static bool IsTransport(string spec) =>
        spec.StartsWith("docker-archive:", StringComparison.Ordinal) || spec.StartsWith("oci:", StringComparison.Ordinal)
        || spec.StartsWith("oci-archive:", StringComparison.Ordinal);

    /// <summary>The canonical cache name of a spec (archives by absolute path), without opening anything.</summary>
    public static string CanonicalName(string spec)
    {
        if (!IsTransport(spec))
            return ImageReference.Parse(spec).ToString();
        var (transport, path, tag) = Split(spec);
        return $"{transport}:{Path.GetFullPath(path)}{(tag is null ? "" : ":" + tag)}";
    }

    private static (string Transport, string Path, string? Tag) Split(string spec)
    {
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var transport = spec[..colon];
        var rest = spec[(colon + 1)..];
        string? tag = null;
        // The tag follows the last ':' after the last '/': ./img.tar:app:1.2 → path ./img.tar, tag app:1.2.
        var slash = rest.LastIndexOf('/');
        var tagColon = rest.IndexOf(':', slash + 1);
        if (tagColon >= 0)
        {
            tag = rest[(tagColon + 1)..];
            rest = rest[..tagColon];
        }
        if (rest.Length == 0)
            throw Core.Errors.VmsanException.Invalid($"'{spec}' names no file.", $"Write it as {transport}:./path[:tag].");
        return (transport, rest, string.IsNullOrEmpty(tag) ? null : tag);
    }

    public static IImageSource Open(string spec, IRegistryClient registry, string tempRoot)
    {
        if (!IsTransport(spec))
            return new RegistrySource(registry, ImageReference.Parse(spec));
        var (transport, path, tag) = Split(spec);
        var name = CanonicalName(spec);
        var full = Path.GetFullPath(path);
        switch (transport)
        {
            case "oci":
                if (!Directory.Exists(full))
                    throw ImageErrors.Bad($"{name}: {full} is not a directory.");
                return new OciLayoutSource(full, tag, name);
            case "oci-archive":
            {
                var dir = Unpack(full, name, tempRoot);
                try
                {
                    return new UnpackedOciSource(dir, tag, name);
                }
                catch
                {
                    Directory.Delete(dir, true);
                    throw;
                }
            }
            default:
            {
                var dir = Unpack(full, name, tempRoot);
                return new DockerArchiveSource(dir, tag, name, () => TryDelete(dir));
            }
        }
    }

    private static string Unpack(string file, string name, string tempRoot)
    {
        if (!File.Exists(file))
            throw ImageErrors.Bad($"{name}: {file} does not exist.");
        Directory.CreateDirectory(tempRoot);
        var dir = Path.Combine(tempRoot, "unpack-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            // The archive's entries are only read as data here (TarFile refuses paths outside dir).
            TarFile.ExtractToDirectory(file, dir, overwriteFiles: false);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or FormatException or ArgumentException or UnauthorizedAccessException)
        {
            TryDelete(dir);
            throw ImageErrors.Bad($"{name}: {file} is not a tar archive of an image ({ex.Message}).", ex);
        }
        return dir;
    }

    internal static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class UnpackedOciSource(string unpacked, string? tag, string name) : OciLayoutSource(unpacked, tag, name)
    {
        private readonly string _unpacked = unpacked;

        public override void Dispose()
        {
            TryDelete(_unpacked);
            base.Dispose();
        }
    }
}
