using System.CommandLine;
using Vmsan.Cli;
using Vmsan.Cli.Commands;
using Vmsan.Cli.Output;

// The CLI is also the supervisor host: `vmsan __supervise ID` (started by create/start) runs a VM's supervisor.
if (await Vmsan.VmsanSupervisorHost.RunIfRequestedAsync(args).ConfigureAwait(false) is { } supervisorExit)
    return supervisorExit;

var console = new CliConsole(Console.Out, Console.Error);
return await CliApp.RunAsync(ArgvRewriter.Rewrite(args), console).ConfigureAwait(false);
