using System.CommandLine;
using System.Text;
using Vmsan.Cli.Output;
using Vmsan.Cli.Terminal;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Commands;

/// <summary>exec and run: commands inside a VM.</summary>
public static class ExecCommands
{
    /// <param name="commandOptional">`run --from-image` may leave the command out (the image's Entrypoint + Cmd).</param>
    /// <param name="timeoutFlag">`exec --timeout`; `run` names it --exec-timeout, its --timeout is the VM's.</param>
    internal sealed class ExecFlags(bool commandOptional = false, string timeoutFlag = "--timeout")
    {
        public readonly Option<string[]> Env = new("--env", "-e") { Description = "Environment variable K=V (repeatable)", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string?> Workdir = new("--workdir", "-w", "--cwd") { Description = "Working directory" };
        public readonly Option<string?> User = new("--user", "-u") { Description = "User to run as" };
        public readonly Option<string?> Timeout = new(timeoutFlag) { Description = "Kill the command after this long (e.g. 30s, 2m); exit 124" };
        public readonly Argument<string[]> Command = new("command")
        {
            Description = commandOptional ? "The command and its arguments (default with --from-image: the image's Entrypoint + Cmd)" : "The command and its arguments",
            Arity = commandOptional ? ArgumentArity.ZeroOrMore : ArgumentArity.OneOrMore,
        };

        public void AddTo(Command c)
        {
            foreach (var o in (Option[])[Env, Workdir, User, Timeout])
                c.Options.Add(o);
            c.Arguments.Add(Command);
        }

        public ExecRequest Read(ParseResult p)
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in p.GetValue(Env) ?? [])
            {
                var eq = kv.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                    throw VmsanException.Invalid($"--env '{kv}' is not KEY=VALUE.", "Write -e NAME=value.");
                env[kv[..eq]] = kv[(eq + 1)..];
            }
            var timeout = p.GetValue(Timeout) is { } t ? Durations.ParseMs(t, Timeout.Name) : 0;
            return new ExecRequest(p.GetValue(Command)!, env, p.GetValue(Workdir), p.GetValue(User), timeout);
        }
    }

    public static Command Exec(CommandContext ctx)
    {
        var cmd = new Command("exec", "Run a command in a VM: vmsan exec [-i] [-t] [-d] ID CMD [ARGS...]; exits with the command's status");
        var id = VmCommands.IdArg();
        cmd.Arguments.Add(id);
        var flags = new ExecFlags();
        flags.AddTo(cmd);
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Stream stdin to the command (EOF closes its stdin)" };
        var tty = new Option<bool>("--tty", "-t") { Description = "Run on a PTY (local terminal in raw mode; resizes follow)" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Start in the background and print the exec id (see exec attach, ps, kill)" };
        cmd.Options.Add(interactive);
        cmd.Options.Add(tty);
        cmd.Options.Add(detach);
        cmd.Subcommands.Add(ExecSessionCommands.Attach(ctx));
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var request = flags.Read(p);
            var vm = p.GetValue(id)!;
            if (p.GetValue(detach))
            {
                if (p.GetValue(interactive) || p.GetValue(tty))
                    throw VmsanException.Invalid("-d cannot be combined with -i or -t.", "Start it with -d, then `vmsan exec attach ID EXEC_ID`.");
                var info = await ctx.Client.StartDetachedAsync(vm, request, ct).ConfigureAwait(false);
                if (ctx.Console.Json)
                    ctx.Console.WriteJson(info, ExecJsonContext.Default.ExecInfo);
                else
                    ctx.Console.Out.WriteLine(info.Id);
                return ExitCodes.Ok;
            }

            if (ctx.Console.Json && !p.GetValue(interactive) && !p.GetValue(tty))
                return await ExecAndReport(ctx, vm, request, ct).ConfigureAwait(false);
            return await StreamAsync(ctx, vm, request, p.GetValue(interactive), p.GetValue(tty), ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    /// <summary>exec over the WebSocket: Ctrl-C reaches the remote group, stdin and a TTY when asked.</summary>
    internal static async Task<int> StreamAsync(CommandContext ctx, string vm, ExecRequest request, bool stdin, bool tty, CancellationToken interrupt, bool allowDetach = false)
    {
        if (tty)
        {
            var size = RawTerminal.Size();
            var env = new Dictionary<string, string>(request.Env ?? new Dictionary<string, string>(), StringComparer.Ordinal);
            if (!env.ContainsKey("TERM"))
                env["TERM"] = Vmsan.Core.VmsanEnvironment.Current.Term is { Length: > 0 } term ? term : "xterm-256color";
            request = request with { Env = env, Cols = size?.Cols ?? 80, Rows = size?.Rows ?? 24 };
        }

        request = request with { Stdin = stdin, Tty = tty };
        // Not the interrupt token: Ctrl-C is forwarded as a signal, and the stream lives until the exit frame.
        await using var exec = await ctx.Client.OpenExecAsync(vm, request, CancellationToken.None).ConfigureAwait(false);
        return await StreamRunner.RunAsync(exec, stdin, tty, allowDetach, ctx.Console.Err, interrupt).ConfigureAwait(false);
    }

    private static async Task<int> ExecAndReport(CommandContext ctx, string id, ExecRequest request, CancellationToken ct)
    {
        if (ctx.Console.Json)
        {
            using var o = new MemoryStream();
            using var e = new MemoryStream();
            var r = await ctx.Client.ExecAsync(id, request, o, e, ct).ConfigureAwait(false);
            ctx.Console.WriteJson(new ExecJsonResult(r.ExitCode, r.Signal, r.TimedOut, Encoding.UTF8.GetString(o.ToArray()), Encoding.UTF8.GetString(e.ToArray())),
                CliJsonContext.Default.ExecJsonResult);
            return r.ExitCode;
        }
        return await StreamAsync(ctx, id, request, stdin: false, tty: false, ct).ConfigureAwait(false);
    }

    public static Command Run(CommandContext ctx)
    {
        var cmd = new Command("run", "Create a VM, run one command in it, and (with --rm) remove it");
        var flags = new VmCommands.CreateFlags();
        flags.AddTo(cmd);
        var rm = new Option<bool>("--rm") { Description = "Remove the VM when the command ends" };
        cmd.Options.Add(rm);
        var exec = new ExecFlags(commandOptional: true, timeoutFlag: "--exec-timeout");
        exec.AddTo(cmd);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var create = flags.Read(p);
            var request = exec.Read(p);
            if (request.Cmd.Count == 0)
            {
                if (create.FromImage is null)
                    throw VmsanException.Invalid("run needs a command (only an image brings a default one).", "Write `vmsan run [flags] -- CMD [ARGS...]`, or pass --from-image.");
                // Resolved before anything is created: an image with no Entrypoint/Cmd boots no VM.
                var image = await Progress.PullProgressDisplay.RunAsync(ctx.Console,
                    progress => ctx.Client.ResolveImageAsync(create.FromImage, create.ImagePull, progress, ct)).ConfigureAwait(false);
                if (image.Config.DefaultCommand.Count == 0)
                    throw VmsanException.Invalid($"{image.Name} sets no Entrypoint or Cmd, so there is nothing to run.", "Give the command after the flags: vmsan run --from-image IMAGE -- CMD.");
                create = create with { ResolvedImage = image };
                request = request with { Cmd = image.Config.DefaultCommand };
            }
            var vm = await VmCommands.CreateAsync(ctx, create, ct).ConfigureAwait(false);
            ctx.Console.Debug($"created {vm.Id} in {vm.BootMs} ms");
            try
            {
                if (!ctx.Console.Json)
                    return await ExecAndReport(ctx, vm.Id, request, ct).ConfigureAwait(false);
                using var o = new MemoryStream();
                using var e = new MemoryStream();
                var r = await ctx.Client.ExecAsync(vm.Id, request, o, e, ct).ConfigureAwait(false);
                ctx.Console.WriteJson(new RunJsonResult(vm.Id, p.GetValue(rm), r.ExitCode, Encoding.UTF8.GetString(o.ToArray()), Encoding.UTF8.GetString(e.ToArray())),
                    CliJsonContext.Default.RunJsonResult);
                return r.ExitCode;
            }
            finally
            {
                // Even on Ctrl-C or a failed exec: --rm promises nothing is left behind.
                if (p.GetValue(rm))
                    await ctx.Client.RemoveAsync(vm.Id, force: true, CancellationToken.None).ConfigureAwait(false);
                else if (!ctx.Console.Json)
                    ctx.Console.Err.WriteLine($"vm {vm.Id} left running (remove it with `vmsan rm -f {vm.Id}`)");
            }
        }));
        return cmd;
    }

}
