using Spectre.Console;

namespace Vmsan.Cli.Progress;

/// <summary>
/// The Spectre.Console console that live progress draws on: stderr, for callers that have already seen stderr is a
/// terminal. Interactive is set, not detected: Spectre's detection also looks at stdin and stdout, so with stdout
/// redirected (<c>digest=$(vmsan images pull REF)</c>, <c>vmsan cp … &gt; file</c>) or stdin piped, while stderr is
/// still the user's terminal, it fell back to its non-interactive renderer (a "name: 40%" line now and then) and
/// no bars were drawn.
/// </summary>
public static class StderrConsole
{
    public static IAnsiConsole Create(TextWriter? err = null) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(err ?? System.Console.Error),
        Ansi = AnsiSupport.Detect,
        ColorSystem = ColorSystemSupport.Detect,
        Interactive = InteractionSupport.Yes,
    });
}
