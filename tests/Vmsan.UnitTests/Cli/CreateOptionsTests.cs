using CsCheck;
using Vmsan.Core.Errors;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.Cli;

public class CreateOptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        var options = new CreateOptions();

        options.Validate();

        Assert.Equal((1, 512, (int?)null, "base", "auto"), (options.Vcpus, options.MemoryMib, options.DiskMib, options.Runtime, options.Accel));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(32)]
    public void Vcpus_within_1_to_32_are_accepted(int vcpus)
    {
        new CreateOptions { Vcpus = vcpus }.Validate();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(33)]
    [InlineData(int.MaxValue)]
    public void Vcpus_outside_1_to_32_are_rejected(int vcpus)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Vcpus = vcpus }.Validate());

        Assert.Contains("--vcpus", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(128)]
    [InlineData(32768)]
    public void Memory_within_128_to_32768_is_accepted(int mib)
    {
        new CreateOptions { MemoryMib = mib }.Validate();
    }

    [Theory]
    [InlineData(127)]
    [InlineData(0)]
    [InlineData(32769)]
    public void Memory_outside_128_to_32768_is_rejected(int mib)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { MemoryMib = mib }.Validate());

        Assert.Contains("--memory", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(256)]
    [InlineData(1024 * 1024)]
    public void Disk_within_256_MiB_to_1_TiB_is_accepted(int mib)
    {
        new CreateOptions { DiskMib = mib }.Validate();
    }

    [Theory]
    [InlineData(255)]
    [InlineData(0)]
    [InlineData(-4096)]
    [InlineData(1024 * 1024 + 1)]
    public void Disk_outside_256_MiB_to_1_TiB_is_rejected(int mib)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { DiskMib = mib }.Validate());

        Assert.Contains("--disk", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("base")]
    [InlineData("python3.13")]
    [InlineData("node22")]
    [InlineData("my_runtime-2")]
    public void Runtime_names_of_letters_digits_dots_dashes_underscores_are_accepted(string runtime)
    {
        new CreateOptions { Runtime = runtime }.Validate();
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("my runtime")]
    [InlineData("../etc")]
    [InlineData("base;rm")]
    [InlineData("base/x")]
    [InlineData("$HOME")]
    [InlineData("bäse")]
    public void Runtime_names_with_other_characters_are_rejected(string runtime)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Runtime = runtime }.Validate());

        Assert.Contains("base", ex.Fix, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("kvm")]
    [InlineData("tcg")]
    public void Known_accelerators_are_accepted(string accel)
    {
        new CreateOptions { Accel = accel }.Validate();
    }

    [Theory]
    [InlineData("")]
    [InlineData("hvf")]
    [InlineData("xen")]
    [InlineData("kvm,tcg")]
    public void Unknown_accelerators_are_rejected(string accel)
    {
        ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Accel = accel }.Validate());
    }

    [Fact]
    public void A_missing_kernel_path_is_rejected()
    {
        using var tmp = new TempDir();

        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Kernel = tmp.Combine("vmlinux") }.Validate());

        Assert.Contains("vmlinux", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_rootfs_path_is_rejected()
    {
        using var tmp = new TempDir();

        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Rootfs = tmp.Combine("root.ext4") }.Validate());

        Assert.Contains("root.ext4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Existing_kernel_and_rootfs_files_are_accepted()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.Combine("vmlinux"), [1]);
        File.WriteAllBytes(tmp.Combine("root.ext4"), [1]);

        new CreateOptions { Kernel = tmp.Combine("vmlinux"), Rootfs = tmp.Combine("root.ext4") }.Validate();
    }

    [Fact]
    public void A_directory_is_not_a_kernel_image()
    {
        using var tmp = new TempDir();

        ErrorAssert.Throws(ErrorCode.InvalidArgument, () => new CreateOptions { Kernel = tmp.Path }.Validate());
    }

    [Theory]
    [InlineData("4096", 4096)]
    [InlineData("512M", 512)]
    [InlineData("512m", 512)]
    [InlineData("512MB", 512)]
    [InlineData("4G", 4096)]
    [InlineData("4g", 4096)]
    [InlineData("4GB", 4096)]
    [InlineData("4GiB", 4096)]
    [InlineData("1T", 1024 * 1024)]
    [InlineData("1TiB", 1024 * 1024)]
    [InlineData(" 2G ", 2048)]
    [InlineData("2047T", 2047 * 1024 * 1024)]
    public void ParseSizeMib_reads_plain_MiB_and_units(string text, int expected)
    {
        Assert.Equal(expected, CreateOptions.ParseSizeMib(text, "--disk"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("garbage")]
    [InlineData("4X")]
    [InlineData("4K")]
    [InlineData("1.5G")]
    [InlineData("0")]
    [InlineData("0G")]
    [InlineData("-1")]
    [InlineData("-4G")]
    [InlineData("+4G")]
    [InlineData("4 G")]
    [InlineData("2048T")]
    [InlineData("2147483648")]
    [InlineData("99999999999999999999")]
    [InlineData("17592186044416T")] // 2^44 TiB: n * 2^20 wraps to 0 in 64 bits
    [InlineData("9223372036854775807T")] // wraps to a negative number
    [InlineData("9007199254740993G")]
    public void ParseSizeMib_rejects_garbage_zero_negative_and_overflow(string text)
    {
        var ex = ErrorAssert.Throws(ErrorCode.InvalidArgument, () => CreateOptions.ParseSizeMib(text, "--disk"));

        Assert.Contains("--disk", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseSizeMib_never_returns_a_non_positive_size()
    {
        Gen.Select(Gen.Long[1, long.MaxValue], Gen.OneOf("", "M", "G", "T", "GiB"))
            .Sample((n, unit) =>
            {
                try
                {
                    return CreateOptions.ParseSizeMib(n.ToString(System.Globalization.CultureInfo.InvariantCulture) + unit, "--disk") > 0;
                }
                catch (Vmsan.Errors.VmsanException ex) when (ex.Code == Vmsan.Errors.ErrorCode.InvalidArgument)
                {
                    // The public parser fails with the SDK's own exception.
                    return true;
                }
            });
    }
}
