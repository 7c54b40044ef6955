using System.Text.Json;

namespace Vmsan.Images.Model;

/// <summary>Reading manifests and indexes, and choosing an index entry by platform.</summary>
public static class Manifests
{
    /// <summary>The media type a document declares itself (registries sometimes serve <c>application/json</c>).</summary>
    public static string? SniffMediaType(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return null;
            if (root.TryGetProperty("mediaType", out var mt) && mt.ValueKind == JsonValueKind.String)
                return mt.GetString();
            if (root.TryGetProperty("manifests", out _))
                return MediaTypes.OciIndex;
            if (root.TryGetProperty("layers", out _) && root.TryGetProperty("config", out _))
                return MediaTypes.OciManifest;
        }
        catch (JsonException)
        {
        }
        return null;
    }

    public static ImageManifest ParseManifest(byte[] json, string what)
    {
        ImageManifest? m;
        try
        {
            m = JsonSerializer.Deserialize(json, ImageJsonContext.Default.ImageManifest);
        }
        catch (JsonException ex)
        {
            throw ImageErrors.Bad($"{what}: the manifest is not valid JSON ({ex.Message}).", ex);
        }
        if (m is null || m.SchemaVersion != 2 || string.IsNullOrEmpty(m.Config.Digest))
            throw ImageErrors.Bad($"{what}: not a schema 2 / OCI image manifest (schema 1 manifests are not supported).");
        foreach (var l in m.Layers)
        {
            Digests.Hex(l.Digest);
            if (MediaTypes.CompressionOf(l.MediaType) == LayerCompression.Unknown)
                throw ImageErrors.Bad($"{what}: layer {l.Digest} has media type '{l.MediaType}', which vmsan cannot unpack.");
        }
        Digests.Hex(m.Config.Digest);
        return m;
    }

    public static ImageIndex ParseIndex(byte[] json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, ImageJsonContext.Default.ImageIndex)
                   ?? throw ImageErrors.Bad($"{what}: empty index.");
        }
        catch (JsonException ex)
        {
            throw ImageErrors.Bad($"{what}: the index is not valid JSON ({ex.Message}).", ex);
        }
    }

    /// <summary>Parses <c>os/arch[/variant]</c>, e.g. <c>linux/amd64</c> or <c>linux/arm/v7</c>.</summary>
    public static Platform ParsePlatform(string text)
    {
        var parts = text.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
            throw Core.Errors.VmsanException.Invalid($"'{text}' is not a platform.", "Write it as os/arch[/variant], e.g. linux/amd64.");
        return new Platform { Os = parts[0], Architecture = parts[1], Variant = parts.Length == 3 ? parts[2] : null };
    }

    public static Platform Host { get; } = new() { Os = "linux", Architecture = "amd64" };

    /// <summary>The entry of <paramref name="index"/> for <paramref name="wanted"/>; PLATFORM_NOT_FOUND lists the others.</summary>
    public static Descriptor Select(ImageIndex index, Platform wanted, string what)
    {
        var candidates = index.Manifests
            .Where(d => MediaTypes.IsManifest(d.MediaType) || MediaTypes.IsIndex(d.MediaType) || string.IsNullOrEmpty(d.MediaType))
            .ToList();
        var match = candidates.FirstOrDefault(d => d.Platform is { } p
                                                   && p.Os == wanted.Os && p.Architecture == wanted.Architecture
                                                   && (string.IsNullOrEmpty(wanted.Variant) || p.Variant == wanted.Variant));
        if (match is not null)
            return match;
        // An OCI layout's single untagged-platform entry (e.g. built by hand) is taken as is.
        if (candidates.Count == 1 && candidates[0].Platform is null)
            return candidates[0];
        throw ImageErrors.PlatformNotFound(what, wanted.ToString(),
            candidates.Where(d => d.Platform is { Os: not "unknown" }).Select(d => d.Platform!.ToString()).Distinct());
    }
}
