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
    }

    [Fact]
    public void Kvm_never_gets_tsc_early_khz()
    {
        var line = KernelCommandLine.For(new AccelChoice(AccelKind.Kvm, "test", 2_596_120));

        Assert.Equal(KernelCommandLine.Base, line);
    }

    [Fact]
    public void Tcg_without_a_known_tsc_gets_the_base_line()
    {
        Assert.Equal(KernelCommandLine.Base, KernelCommandLine.For(new AccelChoice(AccelKind.Tcg, "test")));
    }

    [Fact]
    public void The_base_line_matches_the_documented_fast_boot_arguments()
    {
        var words = KernelCommandLine.Base.Split(' ');

        Assert.Equal("console=ttyS0", words[0]);
        Assert.Contains("panic=1", words);
        Assert.Contains("rdinit=/init", words);
        Assert.Contains("pci=off", words);
        Assert.DoesNotContain(words, w => w.StartsWith("tsc_early_khz", StringComparison.Ordinal));
    }
}
