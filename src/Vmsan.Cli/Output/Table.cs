namespace Vmsan.Cli.Output;

/// <summary>A plain left-aligned text table (no colours: output may be piped).</summary>
public static class Table
{
    public static void Write(TextWriter w, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        w.WriteLine(Line(headers, widths));
        foreach (var r in all)
            w.WriteLine(Line(r, widths));
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
}
