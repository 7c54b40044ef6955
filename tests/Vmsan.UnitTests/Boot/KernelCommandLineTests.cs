using Vmsan.Boot;
using Vmsan.Vmm;

namespace Vmsan.UnitTests.Boot;

public class KernelCommandLineTests
{
    [Fact]
    public void Tcg_with_a_known_tsc_gets_tsc_early_khz()
    {
        var line = KernelCommandLine.For(new AccelChoice(AccelKind.Tcg, "test", 2_596_120));

        Assert.EndsWith(" tsc_early_khz=2596120", line, StringComparison.Ordinal);
        Assert.StartsWith(KernelCommandLine.Base, line, StringComparison.Ordinal);
        Assert.Contains("tsc=reliable", line.Split(' '));
    }

    [Fact]
    public void Kvm_never_gets_tsc_early_khz()
    {
        var line = KernelCommandLine.For(new AccelChoice(AccelKind.Kvm, "test", 2_596_120));

        Assert.Equal(KernelCommandLine.Base, line);
    }

    [Fact]
    public void Tcg_without_a_known_tsc_gets_the_base_line_and_tsc_reliable()
    {
        // With 2+ vCPUs TCG's TSCs look unsynchronized to the kernel, which falls back to jiffies (4 ms resolution, drift).
        Assert.Equal(KernelCommandLine.Base + " tsc=reliable", KernelCommandLine.For(new AccelChoice(AccelKind.Tcg, "test")));
    }

    [Fact]
    public void The_base_line_matches_the_documented_fast_boot_arguments()
    {
        var words = KernelCommandLine.Base.Split(' ');

        Assert.Equal("console=ttyS0", words[0]);
        Assert.Contains("panic=1", words);
        Assert.Contains("rdinit=/init", words);
        Assert.Contains("pci=off", words);
        Assert.DoesNotContain(words, w => w.StartsWith("tsc", StringComparison.Ordinal));
    }
}
