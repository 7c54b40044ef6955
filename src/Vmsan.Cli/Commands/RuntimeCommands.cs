using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Vmsan.Cli.Output;
using Vmsan.Runtimes;

namespace Vmsan.Cli.Commands;

/// <summary><c>vmsan runtimes</c>: the runtime images built from recipes.</summary>
public static class RuntimeCommands
{
    public static Command Runtimes(CommandContext ctx)
    {
        var cmd = new Command("runtimes", "Runtime images: list (default), build NAME, prune");
        cmd.SetAction((p, ct) => ctx.RunAsync(() => Task.FromResult(List(ctx))));
        cmd.Subcommands.Add(Build(ctx));
        cmd.Subcommands.Add(Prune(ctx));
        return cmd;
    }

    private static int List(CommandContext ctx)
    {
        var all = ctx.Client.ListRuntimes();
        if (ctx.Console.Json)
        {
            ctx.Console.WriteJson(all.ToList(), CliJsonContext.Default.ListRuntimeInfo);
            return 0;
        }
        Output.Table.Write(ctx.Console.Out, ["NAME", "VERSION", "BUILT", "SIZE", "RECIPE"],
            all.Select(r => (IReadOnlyList<string>)[
                r.Name, r.Version ?? "-", r.Built ? (r.UpToDate ? "yes" : "yes (outdated)") : "no",
                r.ContentBytes is { } c ? string.Create(CultureInfo.InvariantCulture, $"{c / 1048576.0:F0}M") : "-", r.RecipeDigest[..19],
            ]));
        return 0;
    }

    private static Command Prune(CommandContext ctx)
    {
        var cmd = new Command("prune", "Delete image versions a rebuild superseded that no VM or snapshot uses (the current one always stays)");
        var name = new Argument<string?>("name") { Description = "Only this runtime", Arity = ArgumentArity.ZeroOrOne };
        cmd.Arguments.Add(name);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var r = await ctx.Client.PruneRuntimesAsync(p.GetValue(name), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(r, CliJsonContext.Default.RuntimePruneResult);
                return 0;
            }
            foreach (var f in r.Removed)
                ctx.Console.Out.WriteLine($"removed {f}");
            foreach (var f in r.InUse)
                ctx.Console.Err.WriteLine($"kept {f}: a VM or snapshot uses it");
            foreach (var n in r.Busy)
                ctx.Console.Err.WriteLine($"skipped {n}: a build of it is running");
            ctx.Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"removed {r.Removed.Count} image versions, {r.Bytes / 1048576.0:F0} MiB"));
            return 0;
        }));
        return cmd;
    }

    private static Command Build(CommandContext ctx)
    {
        var cmd = new Command("build", "Build a runtime image from its recipe (Debian packages, npm packages); skipped when up to date");
        var name = new Argument<string>("name") { Description = "Runtime name (see `vmsan runtimes`)" };
        cmd.Arguments.Add(name);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var rt = p.GetValue(name)!;
            RuntimeInfo info;
            if (!ctx.Console.Json && !System.Console.IsErrorRedirected)
            {
                var ansi = Progress.StderrConsole.Create();
                info = await ansi.Status().StartAsync($"building {rt}", async status =>
                    await ctx.Client.BuildRuntimeAsync(rt, line =>
                    {
                        ansi.MarkupLine("[grey]" + Markup.Escape(line) + "[/]");
                        status.Status(Markup.Escape(line.Length > 80 ? line[..80] : line));
                    }, ct).ConfigureAwait(false)).ConfigureAwait(false);
            }
            else
                info = await ctx.Client.BuildRuntimeAsync(rt, ctx.Console.Json ? null : ctx.Console.Err.WriteLine, ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(info, CliJsonContext.Default.RuntimeInfo);
            else
                ctx.Console.Out.WriteLine($"{info.Name} {info.Version ?? ""}".TrimEnd());
            return 0;
        }));
        return cmd;
    }
}
