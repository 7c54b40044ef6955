using System.CommandLine;
using System.Globalization;
using Vmsan.Cli.Output;
using Vmsan.Core.State;

namespace Vmsan.Cli.Commands;

/// <summary><c>vmsan snapshot create|list|rm</c>.</summary>
public static class SnapshotCommands
{
    public static Command Snapshot(CommandContext ctx)
    {
        var cmd = new Command("snapshot", "Snapshots of a VM's memory and disk; `create --snapshot NAME` resumes new VMs from one");
        cmd.Subcommands.Add(Create(ctx));
        cmd.Subcommands.Add(List(ctx));
        cmd.Subcommands.Add(Remove(ctx));
        cmd.Subcommands.Add(Prune(ctx));
        return cmd;
    }

    private static Command Prune(CommandContext ctx)
    {
        var cmd = new Command("prune", "Remove boot snapshots (warm create's) whose kernel, initramfs, agent, image, vmsan or QEMU build changed");
        var all = new Option<bool>("--all") { Description = "Remove every boot snapshot (the next create of each kind boots cold and builds it again)" };
        cmd.Options.Add(all);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var removed = await ctx.Client.PruneBootSnapshotsAsync(p.GetValue(all), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(new RemovedResult([.. removed]), CliJsonContext.Default.RemovedResult);
            else
                foreach (var n in removed)
                    ctx.Console.Out.WriteLine(n);
            return 0;
        }));
        return cmd;
    }

    private static Command Create(CommandContext ctx)
    {
        var cmd = new Command("create", "Snapshot a running VM (paused for the capture, then it continues)");
        var id = VmCommands.IdArg();
        var name = new Option<string?>("--name") { Description = "Snapshot name (default: its id)" };
        cmd.Arguments.Add(id);
        cmd.Options.Add(name);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var m = await ctx.Client.Lifecycle.CreateSnapshotAsync(p.GetValue(id)!, p.GetValue(name), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(m, CliJsonContext.Default.SnapshotManifest);
            else
            {
                ctx.Console.Err.WriteLine($"snapshot {m.Id} of {m.SourceVm}: VM paused {m.PausedMs} ms, device state {m.StateBytes / 1024} KiB, memory {m.MemoryMib} MiB");
                ctx.Console.Out.WriteLine(m.Name);
            }
            return 0;
        }));
        return cmd;
    }

    private static Command List(CommandContext ctx)
    {
        var cmd = new Command("list", "List snapshots");
        cmd.Aliases.Add("ls");
        cmd.SetAction((p, ct) => ctx.RunAsync(() =>
        {
            var all = ctx.Client.Lifecycle.Snapshots.List().ToList();
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(all, CliJsonContext.Default.ListSnapshotManifest);
                return Task.FromResult(0);
            }
            Table.Write(ctx.Console.Out, ["NAME", "ID", "SOURCE", "RUNTIME", "VCPUS", "MEMORY", "QEMU", "CREATED"],
                all.Select(m => (IReadOnlyList<string>)[
                    m.Name, m.Id, m.SourceVm, m.Runtime, m.Vcpus.ToString(CultureInfo.InvariantCulture), $"{m.MemoryMib}M",
                    m.VmmVersion.Split(' ')[0], m.CreatedAt.ToString("u", CultureInfo.InvariantCulture),
                ]));
            return Task.FromResult(0);
        }));
        return cmd;
    }

    private static Command Remove(CommandContext ctx)
    {
        var cmd = new Command("remove", "Remove snapshots (refused while a VM cloned from it exists)");
        cmd.Aliases.Add("rm");
        var names = new Argument<string[]>("names") { Description = "Snapshot names or ids", Arity = ArgumentArity.OneOrMore };
        cmd.Arguments.Add(names);
        cmd.SetAction((p, ct) => ctx.RunAsync(() =>
        {
            var all = p.GetValue(names)!;
            foreach (var n in all)
                ctx.Client.Lifecycle.Snapshots.Find(n);
            foreach (var n in all)
                ctx.Client.RemoveSnapshot(n);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(new RemovedResult(all), CliJsonContext.Default.RemovedResult);
            else
                foreach (var n in all)
                    ctx.Console.Out.WriteLine(n);
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
