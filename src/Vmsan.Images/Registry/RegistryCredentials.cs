using System.Text;
using System.Text.Json;
using Vmsan.Images.Model;

namespace Vmsan.Images.Registry;

public sealed record RegistryCredential(string Username, string Password);

/// <summary>
/// Where credentials come from: an explicit user/password (the CLI's --registry-user and
/// --registry-password-stdin) for every registry, else Docker's <c>~/.docker/config.json</c>
/// <c>auths</c> entries (base64 <c>user:password</c> in <c>auth</c>). Credential helpers are not run.
/// </summary>
public sealed class RegistryCredentials
{
    private readonly RegistryCredential? _explicit;
    private readonly Dictionary<string, RegistryCredential> _byHost = new(StringComparer.OrdinalIgnoreCase);

    public RegistryCredentials(RegistryCredential? explicitCredential = null, string? dockerConfigPath = null)
    {
        _explicit = explicitCredential;
        var path = dockerConfigPath ?? DefaultDockerConfig();
        if (path is not null && File.Exists(path))
            Load(path);
    }

    public static RegistryCredentials None { get; } = new(null, "");

    private static string? DefaultDockerConfig()
    {
        var dir = Vmsan.Core.VmsanEnvironment.Current.DockerConfig;
        if (string.IsNullOrEmpty(dir))
        {
            var home = Vmsan.Core.VmsanEnvironment.Current.UserHome;
            if (string.IsNullOrEmpty(home))
                return null;
            dir = Path.Combine(home, ".docker");
        }
        return Path.Combine(dir, "config.json");
    }

    private void Load(string path)
    {
        DockerConfigFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllBytes(path), ImageJsonContext.Default.DockerConfigFile);
        }
        catch (JsonException)
        {
            return; // a broken docker config must not stop anonymous pulls
        }
        foreach (var (key, entry) in file?.Auths ?? new Dictionary<string, DockerAuthEntry>())
        {
            RegistryCredential? cred = null;
            if (!string.IsNullOrEmpty(entry.Auth))
            {
                try
                {
                    var text = Encoding.UTF8.GetString(Convert.FromBase64String(entry.Auth));
                    var colon = text.IndexOf(':', StringComparison.Ordinal);
                    if (colon > 0)
                        cred = new RegistryCredential(text[..colon], text[(colon + 1)..]);
                }
                catch (FormatException)
                {
                }
            }
            else if (!string.IsNullOrEmpty(entry.Username) && entry.Password is not null)
                cred = new RegistryCredential(entry.Username, entry.Password);
            if (cred is not null)
                _byHost[HostOf(key)] = cred;
        }
    }

    /// <summary>Docker writes keys as <c>host</c>, <c>host:port</c> or <c>https://index.docker.io/v1/</c>.</summary>
    internal static string HostOf(string key)
    {
        var k = key;
        var scheme = k.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
            k = k[(scheme + 3)..];
        var slash = k.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
            k = k[..slash];
        return k is "index.docker.io" or "registry-1.docker.io" ? "docker.io" : k;
    }

    public RegistryCredential? For(string registry) =>
        _explicit ?? (_byHost.TryGetValue(registry, out var c) ? c : null);
}
