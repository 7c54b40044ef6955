using Vmsan.Cli.Output;

namespace Vmsan.UnitTests.Cli;

/// <summary>Tables written anywhere but an interactive stdout are plain columns a script can cut.</summary>
public sealed class TableTests
{
    [Fact]
    public void A_table_to_a_non_terminal_writer_is_plain_aligned_columns_without_escape_codes_or_borders()
    {
        var w = new StringWriter();
        Table.Write(w, ["ID", "STATUS", "NAME"], [["vm-1", "running", "a b"], ["vm-22", "stopped", ""]]);
        Assert.Equal("ID     STATUS   NAME\nvm-1   running  a b\nvm-22  stopped\n", w.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.DoesNotContain('\u001b', w.ToString());
        Assert.DoesNotContain('│', w.ToString());
    }

    [Fact]
    public void An_empty_table_still_prints_its_header()
    {
        var w = new StringWriter();
        Table.Write(w, ["NAME", "SIZE"], []);
        Assert.Equal("NAME  SIZE\n", w.ToString().Replace("\r\n", "\n", StringComparison.Ordinal));
    }
}
