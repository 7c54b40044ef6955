using Vmsan.Core.Errors;
using Vmsan.UnitTests.Support;
using Vmsan.Vmm;

namespace Vmsan.UnitTests.Vmm;

public class AccelDetectorTests
{
    private const string VmxCpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2596.120\nflags\t\t: fpu vme de pse tsc msr vmx ssse3\n";
    private const string NoVirtCpuinfo = "processor\t: 0\ncpu MHz\t\t: 2596.120\nflags\t\t: fpu vme de pse tsc msr ssse3\n";

    /// <summary>A host described by which paths exist, what /proc/cpuinfo says and whether /dev/kvm opens.</summary>
    private static AccelDetector Host(bool devKvm = true, bool pvm = false, string? cpuinfo = VmxCpuinfo, bool openable = true)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        if (devKvm)
            paths.Add("/dev/kvm");
        if (pvm)
            paths.Add("/sys/module/kvm_pvm");
        return new AccelDetector(
            paths.Contains,
            p => p == "/proc/cpuinfo" ? cpuinfo : null,
            p => openable && p == "/dev/kvm" && paths.Contains(p));
    }

    [Fact]
    public void A_usable_kvm_with_hardware_flags_is_chosen_automatically()
    {
        var choice = Host().Detect();

        Assert.Equal(AccelKind.Kvm, choice.Kind);
        Assert.Equal("kvm", choice.Name);
        Assert.Null(choice.TscKhz);
    }

    [Fact]
    public void Amd_svm_counts_as_hardware_virtualization()
    {
        var choice = Host(cpuinfo: "flags\t\t: fpu svm sse\n").Detect("auto");

        Assert.Equal(AccelKind.Kvm, choice.Kind);
    }

    [Fact]
    public void PVM_falls_back_to_tcg_and_says_why()
    {
        var choice = Host(pvm: true).Detect();

        Assert.Equal(AccelKind.Tcg, choice.Kind);
        Assert.Contains("PVM", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void No_dev_kvm_falls_back_to_tcg()
    {
        var choice = Host(devKvm: false).Detect();

        Assert.Equal(AccelKind.Tcg, choice.Kind);
        Assert.Contains("/dev/kvm", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void No_vmx_or_svm_flags_falls_back_to_tcg()
    {
        var choice = Host(cpuinfo: NoVirtCpuinfo).Detect();

        Assert.Equal(AccelKind.Tcg, choice.Kind);
        Assert.Contains("vmx/svm", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_flag_merely_containing_vmx_does_not_count()
    {
        var choice = Host(cpuinfo: "flags\t\t: fpu vmx_ept svmx\n").Detect();

        Assert.Equal(AccelKind.Tcg, choice.Kind);
    }

    [Fact]
    public void A_dev_kvm_that_cannot_be_opened_falls_back_to_tcg()
    {
        var choice = Host(openable: false).Detect();

        Assert.Equal(AccelKind.Tcg, choice.Kind);
        Assert.Contains("read-write", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Tcg_fallback_carries_the_host_tsc_frequency()
    {
        var choice = Host(devKvm: false).Detect();

        Assert.Equal(2_596_120, choice.TscKhz);
    }

    [Theory]
    [InlineData("kvm")]
    [InlineData("KVM")]
    public void Requesting_kvm_when_it_is_unusable_fails_with_KvmUnavailable(string requested)
    {
        var ex = ErrorAssert.Throws(ErrorCode.KvmUnavailable, () => Host(pvm: true).Detect(requested));

        Assert.Contains("PVM", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Requesting_kvm_when_it_is_usable_gives_kvm()
    {
        Assert.Equal(AccelKind.Kvm, Host().Detect("kvm").Kind);
    }

    [Fact]
    public void Requesting_tcg_forces_tcg_even_with_usable_kvm()
    {
        var choice = Host().Detect("tcg");

        Assert.Equal(AccelKind.Tcg, choice.Kind);
        Assert.Equal("requested", choice.Reason);
        Assert.Equal(2_596_120, choice.TscKhz);
    }

    [Theory]
    [InlineData("hvf")]
    [InlineData("kvm ")]
    [InlineData("whpx")]
    public void An_unknown_accelerator_is_an_invalid_argument(string requested)
    {
        ErrorAssert.Throws(ErrorCode.InvalidArgument, () => Host().Detect(requested));
    }

    [Theory]
    [InlineData("cpu MHz\t\t: 2596.120\n", 2_596_120L)]
    [InlineData("cpu MHz : 2596.120", 2_596_120L)]
    [InlineData("processor : 0\ncpu MHz : 3000.000\nprocessor : 1\ncpu MHz : 1200.000\n", 3_000_000L)]
    [InlineData("cpu MHz : 1999.9996\n", 2_000_000L)]
    [InlineData("cpu MHz : bogus\ncpu MHz : 100\n", 100_000L)]
    public void TscKhz_reads_the_first_cpu_MHz_line(string cpuinfo, long expected)
    {
        Assert.Equal(expected, Host(cpuinfo: cpuinfo).TscKhz());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("processor : 0\n")]
    [InlineData("cpu MHz : 0\n")]
    [InlineData("cpu MHz : -5\n")]
    public void TscKhz_is_null_when_unknown(string? cpuinfo)
    {
        Assert.Null(Host(cpuinfo: cpuinfo).TscKhz());
    }
}
