using System.Diagnostics;
using System.Text;

namespace Vmsan.IntegrationTests.Infrastructure;

public sealed record ProcResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs host commands for the tests (ip, nft, the vmsan CLI) with a deadline.</summary>
public static class Sh
{
    public static async Task<ProcResult> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string>? env = null,
        TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{file} {string.Join(' ', args)}` did not finish in time; stderr so far: {await stderr}");
        }
        return new ProcResult(p.ExitCode, await stdout, await stderr);
    }

    public static Task<ProcResult> Bash(string script, TimeSpan? timeout = null) => RunAsync("/bin/bash", ["-c", script], timeout: timeout);

    public static async Task<string> Check(string script)
    {
        var r = await Bash(script);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"`{script}` failed: {r}");
        return r.Stdout;
    }

    /// <summary>The binary's path on PATH, or null.</summary>
    public static string? Which(string binary) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':').Select(d => Path.Combine(d, binary)).FirstOrDefault(File.Exists);

    public static string Rand() => Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()[..3]);

    public static string Lines(params string[] lines) => new StringBuilder().AppendJoin('\n', lines).ToString();
}
