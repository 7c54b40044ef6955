using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using Vmsan.Cli.Output;
using Vmsan.Cli.Terminal;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Commands;

/// <summary>JSON shapes of the exec-session commands (ps, kill, exec -d).</summary>
public sealed record ExecListResult(IReadOnlyList<ExecInfo> Execs);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ExecInfo))]
[JsonSerializable(typeof(ExecListResult))]
internal sealed partial class ExecJsonContext : JsonSerializerContext;

/// <summary>exec attach, ps, kill, connect: views of the agent's execs and sessions.</summary>
public static class ExecSessionCommands
{
    public static Command Attach(CommandContext ctx)
    {
        var cmd = new Command("attach", "Reattach to a detached exec: its buffered output (last 1 MiB per stream), then live output; exits with its status");
        var id = VmCommands.IdArg();
        var exec = new Argument<string>("exec-id") { Description = "Exec id (e-…) or session name" };
        var stdin = new Option<bool>("--interactive", "-i") { Description = "Also send stdin to it" };
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(exec);
        cmd.Options.Add(stdin);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            await using var stream = await ctx.Client.AttachExecAsync(p.GetValue(id)!, p.GetValue(exec)!, ct).ConfigureAwait(false);
            return await StreamRunner.RunAsync(stream, p.GetValue(stdin), tty: false, allowDetach: false, ctx.Console.Err, ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    public static Command Ps(CommandContext ctx)
    {
        var cmd = new Command("ps", "List the execs and sessions of a VM (running, and exited detached ones)");
        var id = VmCommands.IdArg();
        cmd.Arguments.Add(id);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var execs = await ctx.Client.ListExecsAsync(p.GetValue(id)!, ct).ConfigureAwait(false);
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(new ExecListResult(execs), ExecJsonContext.Default.ExecListResult);
                return ExitCodes.Ok;
            }

            Table.Write(ctx.Console.Out, ["EXEC", "PID", "STATE", "EXIT", "STARTED", "TTY", "USER", "SESSION", "COMMAND"],
                execs.Select(e => (IReadOnlyList<string>)
                [
                    e.Id, e.Pid.ToString(CultureInfo.InvariantCulture), e.State, e.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    e.StartedAt.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture), e.Tty ? "yes" : "no", e.User,
                    e.Session ?? "-", string.Join(' ', e.Cmd),
                ]));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    public static Command Kill(CommandContext ctx)
    {
        var cmd = new Command("kill", "Send a signal (default TERM) to an exec's process group");
        var id = VmCommands.IdArg();
        var exec = new Argument<string>("exec-id") { Description = "Exec id (e-…) or session name" };
        var signal = new Argument<string>("signal") { Description = "Signal name or number (TERM, SIGINT, 9...)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "TERM" };
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(exec);
        cmd.Arguments.Add(signal);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var text = p.GetValue(signal) ?? "TERM";
            var number = Signals.Parse(text) ?? throw VmsanException.Invalid($"'{text}' is not a signal.", "Use a name (TERM, INT, KILL, HUP...) or a number 1-64.");
            var info = await ctx.Client.SignalExecAsync(p.GetValue(id)!, p.GetValue(exec)!, number, ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(info, ExecJsonContext.Default.ExecInfo);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    public static Command Connect(CommandContext ctx)
    {
        var cmd = new Command("connect", "Interactive shell in a VM (the user's login shell on a PTY). With --session NAME it survives a disconnect "
            + "and a reconnect replays the scrollback; Ctrl-] leaves a named session running");
        var id = VmCommands.IdArg();
        var session = new Option<string?>("--session", "-s") { Description = "Session name: attach if it runs, else create it" };
        var user = new Option<string?>("--user", "-u") { Description = "User to run as (default: user if the guest has it, else root)" };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "Working directory (default: the user's home)" };
        cmd.Arguments.Add(id);
        cmd.Options.Add(session);
        cmd.Options.Add(user);
        cmd.Options.Add(workdir);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var request = new ExecRequest([], null, p.GetValue(workdir), p.GetValue(user), Session: p.GetValue(session));
            return await ExecCommands.StreamAsync(ctx, p.GetValue(id)!, request, stdin: true, tty: true, ct,
                allowDetach: !string.IsNullOrEmpty(p.GetValue(session))).ConfigureAwait(false);
        }));
        return cmd;
    }
}
