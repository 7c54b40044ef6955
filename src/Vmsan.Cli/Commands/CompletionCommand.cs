using System.CommandLine;
using System.CommandLine.Completions;
using Vmsan.Core;
using Vmsan.Core.State;

namespace Vmsan.Cli.Commands;

/// <summary>
/// <c>vmsan completion bash|zsh|fish</c>. The scripts hold no list of commands or flags: they ask
/// the installed binary through System.CommandLine's <c>[suggest:POS]</c> directive, so they never go
/// stale when a flag is added, and VM ids come from the same state directory <c>list</c> reads.
/// </summary>
public static class CompletionCommand
{
    public static readonly string[] Shells = ["bash", "zsh", "fish"];

    public static Command Build(CommandContext ctx)
    {
        var cmd = new Command("completion", "Print a shell completion script (commands, flags, VM ids)");
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong(Shells);
        cmd.Arguments.Add(shell);
        cmd.SetAction((p, _) => ctx.RunAsync(() =>
        {
            ctx.Console.Out.Write(Script(p.GetValue(shell)!));
            return Task.FromResult(0);
        }));
        return cmd;
    }

    public static string Script(string shell) => shell switch
    {
        "bash" => """
            # vmsan bash completion: eval "$(vmsan completion bash)", or install into
            # /usr/share/bash-completion/completions/vmsan
            _vmsan_complete() {
                local cur=${COMP_WORDS[COMP_CWORD]}
                local IFS=$'\n'
                COMPREPLY=( $(compgen -W "$(vmsan "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "$cur") )
            }
            complete -o default -F _vmsan_complete vmsan

            """,
        "zsh" => """
            #compdef vmsan
            # vmsan zsh completion: put in a directory on $fpath as _vmsan, or eval "$(vmsan completion zsh)"
            _vmsan() {
                local -a candidates
                candidates=("${(@f)$(vmsan "[suggest:${#BUFFER}]" "$BUFFER" 2>/dev/null)}")
                compadd -- ${candidates[@]}
            }
            compdef _vmsan vmsan

            """,
        "fish" => """
            # vmsan fish completion: vmsan completion fish > ~/.config/fish/completions/vmsan.fish
            function __vmsan_complete
                set -l line (commandline -cp)
                vmsan "[suggest:"(string length -- $line)"]" "$line" 2>/dev/null
            end
            complete -c vmsan -f -a '(__vmsan_complete)'

            """,
        _ => throw new ArgumentOutOfRangeException(nameof(shell), shell, "unknown shell"),
    };

    /// <summary>Completes an id argument from the state directory (no root, no VMM probe: it must be instant).</summary>
    public static void AddVmIds(Argument argument)
    {
        argument.CompletionSources.Add(ctx =>
        {
            try
            {
                var store = new VmStore(VmsanPaths.FromEnvironment());
                return store.ListIds().Select(id => new CompletionItem(id));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return [];
            }
        });
    }
}
