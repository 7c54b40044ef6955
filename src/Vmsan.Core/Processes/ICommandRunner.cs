using System.Diagnostics;
using System.Text;
using Vmsan.Core.Errors;

namespace Vmsan.Core.Processes;

public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>Runs host tools (ip, nft, qemu-img...). Behind an interface so logic can be tested without root.</summary>
public interface ICommandRunner
{
    Task<CommandResult> RunAsync(string file, IReadOnlyList<string> args, string? stdin = null, CancellationToken ct = default);
}

public static class CommandRunnerExtensions
{
    /// <summary>Runs and throws <paramref name="code"/> with the tool's stderr when it fails.</summary>
    public static async Task<CommandResult> RunCheckedAsync(this ICommandRunner runner, ErrorCode code, string file,
        IReadOnlyList<string> args, string? stdin = null, CancellationToken ct = default)
    {
        var r = await runner.RunAsync(file, args, stdin, ct).ConfigureAwait(false);
        if (!r.Ok)
            throw new VmsanException(code, $"`{file} {string.Join(' ', args)}` failed ({r.ExitCode}): {r.Stderr.Trim()}",
                "Run `vmsan doctor` to check the host's prerequisites.");
        return r;
    }
}

public sealed class CommandRunner : ICommandRunner
{
    public static readonly CommandRunner Instance = new();

    public async Task<CommandResult> RunAsync(string file, IReadOnlyList<string> args, string? stdin = null, CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new InvalidOperationException("no process");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new VmsanException(ErrorCode.DependencyMissing, $"Cannot run `{file}`: {ex.Message}",
                "Run ./install.sh (or `vmsan doctor`) to install the host prerequisites.", ex);
        }
        using (p)
        {
            var outTask = p.StandardOutput.ReadToEndAsync(ct);
            var errTask = p.StandardError.ReadToEndAsync(ct);
            if (stdin is not null)
            {
                await p.StandardInput.WriteAsync(new StringBuilder(stdin), ct).ConfigureAwait(false);
                p.StandardInput.Close();
            }
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
            return new CommandResult(p.ExitCode, await outTask.ConfigureAwait(false), await errTask.ConfigureAwait(false));
        }
    }
}
