using System.CommandLine;
using Vmsan.Cli.Commands;
using Vmsan.Cli.Output;
using Vmsan.Cli.Terminal;
using Vmsan.Core.Errors;

namespace Vmsan.Cli;

public static class CliApp
{
    public static readonly Option<bool> Json = new("--json") { Description = "Print one JSON document on stdout (errors as {\"error\":{code,message,fix}})", Recursive = true };
    public static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Debug output on stderr", Recursive = true };

    public static RootCommand Build(CliConsole console) => Build(console, interrupts: null);

    private static RootCommand Build(CliConsole console, Interrupts? interrupts)
    {
        var root = new RootCommand("vmsan: hardware-isolated microVM sandboxes (QEMU microvm / Firecracker) with an in-guest agent");
        root.Options.Add(Json);
        root.Options.Add(Verbose);
        var ctx = new CommandContext(console) { Interrupts = interrupts };
        foreach (var cmd in VmCommands.All(ctx))
            root.Subcommands.Add(cmd);
        VersionCommand.ReplaceRootOption(root, ctx);
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliConsole console)
    {
        using var interrupts = new Interrupts();
        var root = Build(console, interrupts);
        var parse = root.Parse(args);
        console.Json = parse.GetValue(Json);
        console.Verbose = parse.GetValue(Verbose);
        if (parse.Errors.Count > 0)
        {
            return console.Fail(VmsanException.Invalid(string.Join("; ", parse.Errors.Select(e => e.Message)),
                $"Run `vmsan {parse.CommandResult.Command.Name} --help`."));
        }
        try
        {
            // ProcessTerminationTimeout = null: SIGINT/SIGTERM are Interrupts' (it waits for the command's cleanup).
            var config = new InvocationConfiguration { Output = console.Out, Error = console.Err, ProcessTerminationTimeout = null };
            return await parse.InvokeAsync(config, interrupts.Token).ConfigureAwait(false);
        }
        catch (VmsanException ex)
        {
            return console.Fail(ex);
        }
        catch (Vmsan.Errors.VmsanException ex)
        {
            return console.Fail(CliErrors.FromSdk(ex));
        }
    }
}
