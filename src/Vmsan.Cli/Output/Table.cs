using Spectre.Console;

namespace Vmsan.Cli.Output;

/// <summary>
/// The CLI's tables (<c>list</c>, <c>ps</c>, <c>images</c>, <c>snapshot list</c>, <c>version</c>...).
/// On an interactive terminal: a Spectre.Console table (rounded border, bold header; colour only
/// where the terminal has it and <c>NO_COLOR</c> is unset). Anywhere else (a pipe, a file, a test's
/// writer): plain left-aligned columns with no escape codes, stable for scripts (<c>--json</c> is
/// the scripting format; this one is for <c>awk</c>).
/// </summary>
public static class Table
{
    public static void Write(TextWriter w, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        if (IsTerminal(w))
            WriteFancy(headers, all);
        else
            WritePlain(w, headers, all);
    }

    /// <summary>Only the process's real stdout, and only when it is a terminal.</summary>
    private static bool IsTerminal(TextWriter w) =>
        ReferenceEquals(w, System.Console.Out) && !System.Console.IsOutputRedirected
        && Vmsan.Core.VmsanEnvironment.Current.Term is not (null or "" or "dumb");

    private static void WriteFancy(IReadOnlyList<string> headers, List<IReadOnlyList<string>> rows)
    {
        var noColor = Vmsan.Core.VmsanEnvironment.Current.NoColor;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(System.Console.Out),
            Ansi = AnsiSupport.Detect,
            ColorSystem = noColor ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
        });
        var table = new Spectre.Console.Table { Border = TableBorder.Rounded };
        foreach (var h in headers)
            table.AddColumn(new TableColumn(noColor ? Markup.Escape(h) : $"[bold]{Markup.Escape(h)}[/]") { NoWrap = true });
        foreach (var r in rows)
            table.AddRow(r.Select(c => new Text(c)).ToArray());
        console.Write(table);
    }

    private static void WritePlain(TextWriter w, IReadOnlyList<string> headers, List<IReadOnlyList<string>> rows)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        w.WriteLine(Line(headers, widths));
        foreach (var r in rows)
            w.WriteLine(Line(r, widths));
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
