using System.CommandLine;
using Vmsan.Cli;
using Vmsan.Cli.Commands;
using Vmsan.Cli.Output;

var console = new CliConsole(Console.Out, Console.Error);
return await CliApp.RunAsync(ArgvRewriter.Rewrite(args), console).ConfigureAwait(false);
