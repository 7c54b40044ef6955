using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vmsan.Images.Model;

/// <summary>An OCI content descriptor (also Docker's).</summary>
public sealed record Descriptor
{
    public string MediaType { get; init; } = "";
    public string Digest { get; init; } = "";
    public long Size { get; init; }
    public Platform? Platform { get; init; }
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

public sealed record Platform
{
    public string Architecture { get; init; } = "";
    public string Os { get; init; } = "";
    [JsonPropertyName("os.version")] public string? OsVersion { get; init; }
    public string? Variant { get; init; }

    public override string ToString() => $"{Os}/{Architecture}{(string.IsNullOrEmpty(Variant) ? "" : "/" + Variant)}";
}

/// <summary>An image manifest (Docker schema 2 or OCI).</summary>
public sealed record ImageManifest
{
    public int SchemaVersion { get; init; }
    public string? MediaType { get; init; }
    public Descriptor Config { get; init; } = new();
    public IReadOnlyList<Descriptor> Layers { get; init; } = [];
}

/// <summary>A manifest list (Docker) or image index (OCI).</summary>
public sealed record ImageIndex
{
    public int SchemaVersion { get; init; }
    public string? MediaType { get; init; }
    public IReadOnlyList<Descriptor> Manifests { get; init; } = [];
}

/// <summary>The parts of the image configuration blob vmsan uses.</summary>
public sealed record ImageConfigFile
{
    public string? Architecture { get; init; }
    public string? Os { get; init; }
    public string? Variant { get; init; }
    public ContainerConfig? Config { get; init; }
    public RootFs? Rootfs { get; init; }
}

public sealed record RootFs
{
    public string? Type { get; init; }
    [JsonPropertyName("diff_ids")] public IReadOnlyList<string>? DiffIds { get; init; }
}

/// <summary>The process defaults an image sets (the capitalised names are the spec's).</summary>
public sealed record ContainerConfig
{
    public string? User { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public string? WorkingDir { get; init; }
    public IReadOnlyDictionary<string, JsonElement>? ExposedPorts { get; init; }
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
}

/// <summary>One entry of a <c>docker save</c> archive's manifest.json.</summary>
public sealed record DockerArchiveEntry
{
    public string Config { get; init; } = "";
    public IReadOnlyList<string>? RepoTags { get; init; }
    public IReadOnlyList<string> Layers { get; init; } = [];
}

/// <summary>Bearer token service answer (either name is used in the wild).</summary>
public sealed record TokenResponse
{
    public string? Token { get; init; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; init; }
}

/// <summary>The part of <c>~/.docker/config.json</c> that holds credentials.</summary>
public sealed record DockerConfigFile
{
    public IReadOnlyDictionary<string, DockerAuthEntry>? Auths { get; init; }
}

public sealed record DockerAuthEntry
{
    public string? Auth { get; init; }
    public string? Username { get; init; }
    public string? Password { get; init; }
}

/// <summary>Registry error body: <c>{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}</c>.</summary>
public sealed record RegistryErrors
{
    public IReadOnlyList<RegistryError>? Errors { get; init; }
}

public sealed record RegistryError
{
    public string? Code { get; init; }
    public string? Message { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(DockerConfigFile))]
[JsonSerializable(typeof(RegistryErrors))]
public sealed partial class ImageJsonContext : JsonSerializerContext;

/// <summary>The image config uses Docker's capitalised names for its inner object; parsed case-insensitively.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageConfigFile))]
[JsonSerializable(typeof(List<DockerArchiveEntry>))]
public sealed partial class ImageConfigJsonContext : JsonSerializerContext;
