using System.Text.Json.Serialization;

namespace Vmsan.Images.Cache;

/// <summary>What an image asks of the processes in its VM (from its config's <c>config</c> object).</summary>
public sealed record ImageDefaults
{
    public IReadOnlyList<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyList<string>? ExposedPorts { get; init; }

    /// <summary>Entrypoint + Cmd, the command <c>run</c> starts when given none.</summary>
    public IReadOnlyList<string> DefaultCommand => [.. Entrypoint ?? [], .. Cmd ?? []];

    /// <summary>Env as a dictionary (later entries win, like Docker).</summary>
    public Dictionary<string, string> EnvMap()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in Env ?? [])
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                d[e[..eq]] = e[(eq + 1)..];
        }
        return d;
    }
}

/// <summary>A cached image: <c>images/refs/HASH.json</c>, the name it was pulled by and what it resolved to.</summary>
public sealed record ImageRecord
{
    public required string Name { get; init; }
    public required string ManifestDigest { get; init; }
    public required string ConfigDigest { get; init; }
    public required string Platform { get; init; }
    public required DateTimeOffset PulledAt { get; init; }
    public required IReadOnlyList<string> Layers { get; init; }
    /// <summary>Sum of the layer blobs (as stored, compressed).</summary>
    public required long SizeBytes { get; init; }
    public required ImageDefaults Config { get; init; }
}

/// <summary>Beside each converted root image: <c>images/rootfs/HEX/image.json</c>.</summary>
public sealed record RootfsInfo
{
    public required string ManifestDigest { get; init; }
    public required long SizeBytes { get; init; }
    public required long ContentBytes { get; init; }
    public required DateTimeOffset BuiltAt { get; init; }
    public required ImageDefaults Config { get; init; }
    /// <summary>How long applying the layers into the temp tree took.</summary>
    public long ApplyMs { get; init; }
    /// <summary>How long <c>mkfs.ext4 -d</c> (and measuring the tree) took.</summary>
    public long MkfsMs { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageRecord))]
[JsonSerializable(typeof(RootfsInfo))]
[JsonSerializable(typeof(List<ImageRecord>))]
public sealed partial class ImageCacheJsonContext : JsonSerializerContext;
