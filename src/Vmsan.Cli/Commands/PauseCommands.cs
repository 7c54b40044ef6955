using System.CommandLine;
using Vmsan.Cli.Output;

namespace Vmsan.Cli.Commands;

/// <summary><c>vmsan pause</c> / <c>vmsan resume</c>: stop and continue a VM's vCPUs, memory kept.</summary>
public static class PauseCommands
{
    public static Command Pause(CommandContext ctx)
    {
        var persist = new Option<bool>("--persist") { Description = "Also write memory and device state to disk and end the VMM (RAM freed); `resume` restores it" };
        return Build(ctx, "pause", "Pause VMs: stop their vCPUs, keep memory and disk (`resume` continues)",
            (p, id, ct) => ctx.Client.PauseAsync(id, p.GetValue(persist), ct), persist);
    }

    public static Command Resume(CommandContext ctx) =>
        Build(ctx, "resume", "Continue paused VMs where they stopped",
            (_, id, ct) => ctx.Client.ResumeAsync(id, ct));

    private static Command Build(CommandContext ctx, string name, string description, Func<ParseResult, string, CancellationToken, Task<VmInfo>> act, Option? option = null)
    {
        var cmd = new Command(name, description);
        if (option is not null)
            cmd.Options.Add(option);
        var ids = new Argument<string[]>("ids") { Description = "VM ids", Arity = ArgumentArity.OneOrMore };
        cmd.Arguments.Add(ids);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var all = p.GetValue(ids)!;
            foreach (var id in all)
                VmsanClient.ValidateId(id);
            var done = new List<VmInfo>();
            foreach (var id in all)
                done.Add(await act(p, id, ct).ConfigureAwait(false));
            if (ctx.Console.Json)
                ctx.Console.WriteJson(done, CliJsonContext.Default.ListVmInfo);
            else
                foreach (var v in done)
                    ctx.Console.Out.WriteLine(v.Id);
            return 0;
        }));
        return cmd;
    }
}
