using System.CommandLine;
using System.Text;
using Vmsan.Agent.Protocol;
using Vmsan.Cli.Output;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Commands;

/// <summary>exec and run: commands inside a VM.</summary>
public static class ExecCommands
{
    internal sealed class ExecFlags
    {
        public readonly Option<string[]> Env = new("--env", "-e") { Description = "Environment variable K=V (repeatable)", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string?> Workdir = new("--workdir", "-w", "--cwd") { Description = "Working directory" };
        public readonly Option<string?> User = new("--user", "-u") { Description = "User to run as" };
        public readonly Option<string?> Timeout = new("--timeout") { Description = "Kill the command after this long (e.g. 30s, 2m); exit 124" };
        public readonly Argument<string[]> Command = new("command") { Description = "The command and its arguments", Arity = ArgumentArity.OneOrMore };

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
            var timeout = p.GetValue(Timeout) is { } t ? Durations.ParseMs(t, "--timeout") : 0;
            return new ExecRequest(p.GetValue(Command)!, env, p.GetValue(Workdir), p.GetValue(User), timeout);
        }
    }

    public static Command Exec(CommandContext ctx)
    {
        var cmd = new Command("exec", "Run a command in a VM: vmsan exec ID CMD [ARGS...]; exits with the command's status");
        var id = VmCommands.IdArg();
        cmd.Arguments.Add(id);
        var flags = new ExecFlags();
        flags.AddTo(cmd);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var request = flags.Read(p);
            return await ExecAndReport(ctx, p.GetValue(id)!, request, ct).ConfigureAwait(false);
        }));
        return cmd;
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
        await using var stdout = Console.OpenStandardOutput();
        await using var stderr = Console.OpenStandardError();
        var result = await ctx.Client.ExecAsync(id, request, stdout, stderr, ct).ConfigureAwait(false);
        return result.ExitCode;
    }

    public static Command Run(CommandContext ctx)
    {
        var cmd = new Command("run", "Create a VM, run one command in it, and (with --rm) remove it");
        var flags = new VmCommands.CreateFlags();
        flags.AddTo(cmd);
        var rm = new Option<bool>("--rm") { Description = "Remove the VM when the command ends" };
        cmd.Options.Add(rm);
        var exec = new ExecFlags();
        exec.AddTo(cmd);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var create = flags.Read(p);
            var request = exec.Read(p);
            var vm = await ctx.Client.CreateAsync(create, ct).ConfigureAwait(false);
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
