using System.Diagnostics;
using System.Reflection;
using Vmsan.Agent.Client;

namespace Vmsan.Agent.Tests;

/// <summary>A host-mode vmsan-agent on 127.0.0.1, started the way the tests need it.</summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _tokenFile;

    private AgentProcess(Process process, string tokenFile, string token, int port)
    {
        _process = process;
        _tokenFile = tokenFile;
        Token = token;
        Port = port;
    }

    public string Token { get; }

    public int Port { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    internal AgentClient CreateClient(string? token) => AgentClient.ForTcp("127.0.0.1", Port, token);

    internal AgentClient CreateClient() => CreateClient(Token);

    public static string AgentPath
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("VMSAN_AGENT_PATH");
            if (!string.IsNullOrEmpty(fromEnv))
            {
                return Path.GetFullPath(fromEnv);
            }

            return typeof(AgentProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .Single(a => a.Key == "VmsanAgentPath").Value!;
        }
    }

    public static async Task<AgentProcess> StartAsync(IDictionary<string, string>? extraEnvironment = null, int port = 0, string? token = null,
        IReadOnlyList<string>? extraArgs = null)
    {
        var path = AgentPath;
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"vmsan-agent not built at {path} (build src/Vmsan.Agent or set VMSAN_AGENT_PATH)");
        }

        token ??= Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant() + Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant();
        var tokenFile = Path.Combine(Path.GetTempPath(), $"vmsan-agent-test-{Guid.NewGuid():N}.token");
        await File.WriteAllTextAsync(tokenFile, token);

        var isDll = path.EndsWith(".dll", StringComparison.Ordinal);
        var info = new ProcessStartInfo(isDll ? "dotnet" : path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (isDll)
        {
            info.ArgumentList.Add(path);
        }

        foreach (var arg in new[] { "--listen", $"127.0.0.1:{port}", "--token-file", tokenFile, "--hostname", "vm-test0001" }.Concat(extraArgs ?? []))
        {
            info.ArgumentList.Add(arg);
        }

        // The worst case: the token sits in the agent's own environment; children must still not see it.
        info.Environment["VMSAN_TOKEN"] = token;
        foreach (var (key, value) in extraEnvironment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine(e.Data);
            }
        };
        process.BeginErrorReadLine();

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cts.Token)
                ?? throw new InvalidOperationException($"vmsan-agent exited before listening (code {(process.HasExited ? process.ExitCode : -1)})");
            const string Marker = "vmsan-agent: listening on ";
            if (line.StartsWith(Marker, StringComparison.Ordinal))
            {
                return new AgentProcess(process, tokenFile, token, int.Parse(line[Marker.Length..], System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await WaitForExitAsync(TimeSpan.FromSeconds(5));
        }

        _process.Dispose();
        File.Delete(_tokenFile);
    }
}

/// <summary>One agent shared by a test class.</summary>
public sealed class AgentFixture : IAsyncLifetime
{
    /// <summary>Set in the agent's own environment; a child must never see it.</summary>
    public const string Canary = "VMSAN_TEST_CANARY";

    public AgentProcess Agent { get; private set; } = null!;

    internal AgentClient Client { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Agent = await AgentProcess.StartAsync(new Dictionary<string, string> { [Canary] = "leaked" });
        Client = Agent.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Agent.DisposeAsync();
    }
}
