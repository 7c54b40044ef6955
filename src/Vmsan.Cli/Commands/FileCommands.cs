using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;
using Vmsan.Cli.Progress;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Commands;

/// <summary>Result of upload/download with --json.</summary>
public sealed record TransferJsonResult(long Files, long Directories, long Symlinks, long Bytes, long DurationMs);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(TransferJsonResult))]
internal sealed partial class FilesCliJsonContext : JsonSerializerContext;

/// <summary>upload and download: files between the host and a VM, as streamed tar (docker cp semantics).</summary>
public static class FileCommands
{
    private static Option<string?> UserOption() => new("--user", "-u")
    {
        Description = "Owner of uploaded files in the VM / home for relative paths (default: 'user' when the VM has it, else root)",
    };

    public static Command Upload(CommandContext ctx)
    {
        var cmd = new Command("upload", "Copy local files or directories into a VM: vmsan upload ID SRC... DEST ('-' as SRC: a tar stream on stdin)");
        var id = VmCommands.IdArg();
        var paths = new Argument<string[]>("paths") { Description = "SRC... DEST: local files/directories (recursive; DIR/. for its content), then the VM directory", Arity = new ArgumentArity(2, 100_000) };
        var user = UserOption();
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(paths);
        cmd.Options.Add(user);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var all = p.GetValue(paths)!;
            var (sources, dest) = (all[..^1], all[^1]);
            var watch = Stopwatch.StartNew();
            TransferSummary summary;
            if (sources is ["-"])
            {
                await using var stdin = Console.OpenStandardInput();
                summary = await TransferProgressDisplay.RunAsync(ctx.Console, "upload", null,
                    progress => ctx.Client.UploadTarAsync(p.GetValue(id)!, stdin, dest, p.GetValue(user), progress, ct)).ConfigureAwait(false);
            }
            else
            {
                if (sources.Contains("-"))
                    throw VmsanException.Invalid("'-' (a tar stream on stdin) must be the only source.", "Run: tar c . | vmsan upload ID - DEST");
                summary = await TransferProgressDisplay.RunAsync(ctx.Console, "upload", TransferProgressDisplay.LocalBytes(sources),
                    progress => ctx.Client.UploadAsync(p.GetValue(id)!, sources, dest, p.GetValue(user), progress, ct)).ConfigureAwait(false);
            }
            Report(ctx, "uploaded", summary, watch.ElapsedMilliseconds, jsonToStdout: true);
            return 0;
        }));
        return cmd;
    }

    public static Command Download(CommandContext ctx)
    {
        var cmd = new Command("download", "Copy a file or directory out of a VM: vmsan download ID SRC DEST ('-' as DEST: a tar stream on stdout)");
        var id = VmCommands.IdArg();
        var src = new Argument<string>("src") { Description = "File or directory in the VM" };
        var dest = new Argument<string>("dest") { Description = "Local path: an existing directory receives SRC's name, else SRC is written as DEST" };
        var user = UserOption();
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(src);
        cmd.Arguments.Add(dest);
        cmd.Options.Add(user);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var watch = Stopwatch.StartNew();
            if (p.GetValue(dest) == "-")
            {
                await using var stdout = Console.OpenStandardOutput();
                var bytes = await TransferProgressDisplay.RunAsync(ctx.Console, "download", null,
                    progress => ctx.Client.DownloadTarAsync(p.GetValue(id)!, p.GetValue(src)!, stdout, p.GetValue(user), progress, ct)).ConfigureAwait(false);
                ctx.Console.Debug($"download: {bytes} bytes of tar in {watch.ElapsedMilliseconds} ms");
                return 0;
            }
            var summary = await TransferProgressDisplay.RunAsync(ctx.Console, "download", null,
                progress => ctx.Client.DownloadAsync(p.GetValue(id)!, p.GetValue(src)!, p.GetValue(dest)!, p.GetValue(user), progress, ct)).ConfigureAwait(false);
            Report(ctx, "downloaded", summary, watch.ElapsedMilliseconds, jsonToStdout: true);
            return 0;
        }));
        return cmd;
    }

    private static void Report(CommandContext ctx, string verb, TransferSummary s, long ms, bool jsonToStdout)
    {
        if (ctx.Console.Json && jsonToStdout)
        {
            ctx.Console.WriteJson(new TransferJsonResult(s.Files, s.Directories, s.Symlinks, s.Bytes, ms), FilesCliJsonContext.Default.TransferJsonResult);
            return;
        }
        ctx.Console.Info(string.Create(CultureInfo.InvariantCulture,
            $"{verb} {s.Files} files, {s.Directories} directories, {s.Symlinks} symlinks, {s.Bytes} bytes in {ms} ms"));
    }
}
