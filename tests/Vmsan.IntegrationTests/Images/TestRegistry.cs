using System.Diagnostics;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests.Images;

/// <summary>
/// Debian's docker-registry (the CNCF distribution registry), started by the test on the loopback
/// of a namespace the test owns, storing into a temp directory; killed by its pid on dispose.
/// </summary>
public sealed class TestRegistry : IAsyncDisposable
{
    private readonly Process _process;

    private TestRegistry(Process process, string ns, int port, string storage, string dir)
    {
        _process = process;
        Namespace = ns;
        Port = port;
        Storage = storage;
        Dir = dir;
    }

    public string Namespace { get; }
    public int Port { get; }
    public string Storage { get; }
    public string Dir { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <param name="authYaml">An <c>auth:</c> block (htpasswd or token), or null for an open registry.</param>
    public static async Task<TestRegistry> StartAsync(string ns, string dir, string? authYaml = null)
    {
        Directory.CreateDirectory(dir);
        var port = Random.Shared.Next(20000, 40000);
        var storage = Path.Combine(dir, "storage");
        var config = Path.Combine(dir, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {storage}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            {authYaml ?? ""}
            """);
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["netns", "exec", ns, "docker-registry", "serve", config])
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var reg = new TestRegistry(p, ns, port, storage, dir);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var r = await Sh.Bash($"ip netns exec {ns} curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/v2/");
            if (r.Stdout is "200" or "401")
                return reg;
            if (p.HasExited || DateTime.UtcNow > deadline)
            {
                await reg.DisposeAsync();
                throw new InvalidOperationException($"docker-registry did not start on {port} (exit {(p.HasExited ? p.ExitCode : -1)}).");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Pushes tag <paramref name="tag"/> of an OCI layout as REPO:TAG with skopeo (a fixture tool only), digests preserved.</summary>
    public async Task PushAsync(OciLayout layout, string tag, string repo, string? creds = null, bool all = false)
    {
        var r = await Sh.RunAsync("ip", ["netns", "exec", Namespace, "skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
            .. all ? (string[])["--all"] : [], .. creds is null ? (string[])[] : ["--dest-creds", creds],
            $"oci:{layout.Dir}:{tag}", $"docker://{Host}/{repo}:{tag}"], timeout: TimeSpan.FromMinutes(3));
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"skopeo copy {tag} failed: {r}");
    }

    /// <summary>Where the registry keeps a blob's bytes (its filesystem driver's layout).</summary>
    public string BlobData(string digest)
    {
        var hex = digest["sha256:".Length..];
        return Path.Combine(Storage, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
