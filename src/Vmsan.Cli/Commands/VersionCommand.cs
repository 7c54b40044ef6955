using System.CommandLine;
using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using Vmsan.Cli.Output;
using Vmsan.Core;

namespace Vmsan.Cli.Commands;

/// <summary>
/// <c>vmsan version</c> (and <c>--version</c>): what a bug report needs, read from what is installed
/// rather than from what the build thinks it shipped — the assets directory can be older than the CLI.
/// </summary>
public static class VersionCommand
{
    public static Command Build(CommandContext ctx)
    {
        var cmd = new Command("version", "Versions of the CLI, agent, guest kernel, QEMU and runtime images");
        cmd.SetAction((_, _) => ctx.RunAsync(() => Task.FromResult(Print(ctx))));
        return cmd;
    }

    /// <summary>Makes the root's built-in <c>--version</c> print the same report.</summary>
    public static void ReplaceRootOption(RootCommand root, CommandContext ctx)
    {
        foreach (var o in root.Options)
        {
            if (o is VersionOption v)
                v.Action = new Handler(ctx);
        }
    }

    private sealed class Handler(CommandContext ctx) : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult) => Print(ctx);
    }

    internal static int Print(CommandContext ctx)
    {
        var report = Collect(VmsanPaths.FromEnvironment());
        if (ctx.Console.Json)
        {
            ctx.Console.WriteJson(report, CliJsonContext.Default.VersionReport);
            return 0;
        }
        Table.Write(ctx.Console.Out, ["COMPONENT", "VERSION"],
        [
            ["vmsan", report.Cli],
            ["agent", report.Agent ?? "not installed"],
            ["kernel", report.Kernel ?? "not installed"],
            ["qemu", report.Qemu ?? "not found"],
            .. report.Runtimes.Select(r => (IReadOnlyList<string>)[$"runtime {r.Name}", r.Version]),
        ]);
        return 0;
    }

    internal static VersionReport Collect(VmsanPaths paths)
    {
        var cli = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        return new VersionReport(cli, AgentVersion(paths), KernelVersion(paths), QemuVersion(), RuntimeVersions(paths));
    }

    /// <summary>The agent has no version of its own apart from the build: its digest names it exactly.</summary>
    private static string? AgentVersion(VmsanPaths paths)
    {
        var agent = Path.Combine(paths.Assets, "bin", "vmsan-agent");
        if (!File.Exists(agent))
            return null;
        using var f = File.OpenRead(agent);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f))[..12];
    }

    private static string? KernelVersion(VmsanPaths paths)
    {
        var package = Path.Combine(paths.KernelDir, "package");
        var version = Path.Combine(paths.KernelDir, "version");
        if (File.Exists(package))
            return File.ReadAllText(package).Trim();
        return File.Exists(version) ? File.ReadAllText(version).Trim() : null;
    }

    private static string? QemuVersion()
    {
        var qemu = Vmm.Qemu.QemuMicrovmBackend.FindOnPath("qemu-system-x86_64");
        if (qemu is null)
            return null;
        try
        {
            var psi = new ProcessStartInfo(qemu, "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi);
            if (p is null)
                return null;
            var first = p.StandardOutput.ReadLine();
            p.WaitForExit(5000);
            return first?.Trim();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static List<RuntimeVersion> RuntimeVersions(VmsanPaths paths)
    {
        var list = new List<RuntimeVersion>();
        var dir = Path.Combine(paths.Assets, "runtimes");
        if (!Directory.Exists(dir))
            return list;
        foreach (var rt in Directory.EnumerateDirectories(dir).Order(StringComparer.Ordinal))
        {
            var manifest = Path.Combine(rt, "manifest.json");
            if (!File.Exists(manifest))
                continue;
            string version;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(manifest));
                var root = doc.RootElement;
                var v = root.TryGetProperty("version", out var ve) ? ve.GetString() : null;
                var suite = root.TryGetProperty("debianSuite", out var se) ? se.GetString() : null;
                var built = root.TryGetProperty("builtAt", out var be) ? be.GetString() : null;
                version = string.Join(", ", new[] { v, suite is null ? null : "debian " + suite, built is null ? null : "built " + built }.Where(s => s is not null));
            }
            catch (JsonException)
            {
                version = "unreadable manifest";
            }
            list.Add(new RuntimeVersion(Path.GetFileName(rt), version));
        }
        return list;
    }
}

public sealed record RuntimeVersion(string Name, string Version);

public sealed record VersionReport(string Cli, string? Agent, string? Kernel, string? Qemu, IReadOnlyList<RuntimeVersion> Runtimes);
