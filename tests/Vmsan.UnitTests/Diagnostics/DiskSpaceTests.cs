using CsCheck;
using Vmsan.Diagnostics;

namespace Vmsan.UnitTests.Diagnostics;

public sealed class DiskSpaceTests
{
    private const long MiB = 1024 * 1024;

    [Fact]
    public void A_disk_that_fits_in_the_free_space_gets_no_warning()
    {
        Assert.Null(DiskSpace.CreateWarning(4096, 4096 * MiB, "/x"));
    }

    [Fact]
    public void A_disk_bigger_than_the_free_space_is_warned_about_with_both_sizes()
    {
        var w = DiskSpace.CreateWarning(4097, 4096 * MiB, "/var/x");

        Assert.NotNull(w);
        Assert.Contains("--disk 4097 MiB", w, StringComparison.Ordinal);
        Assert.Contains("4.0 GiB free on /var/x", w, StringComparison.Ordinal);
    }

    [Fact]
    public void Doctor_reports_how_much_the_vms_could_grow_against_what_is_free_and_says_when_overcommitted()
    {
        var disks = new[] { new VmDiskUsage("vm-1", 10L * 1024 * MiB, 1024 * MiB), new VmDiskUsage("vm-2", 4L * 1024 * MiB, 5L * 1024 * MiB) };

        var fits = DiskSpace.Check(disks, 20L * 1024 * MiB, "/h");
        var over = DiskSpace.Check(disks, 5L * 1024 * MiB, "/h");

        Assert.True(fits.Ok);
        Assert.Equal("2 VM disks could grow by 9.0 GiB; 20.0 GiB free on /h", fits.Detail);
        Assert.Null(fits.Fix);
        Assert.True(over.Ok);
        Assert.Contains("overcommitted by 4.0 GiB", over.Detail, StringComparison.Ordinal);
        Assert.NotNull(over.Fix);
    }

    [Fact]
    public void Growth_is_never_negative_and_is_the_sum_of_each_disks_headroom()
    {
        Gen.Select(Gen.Long[0, 1L << 40], Gen.Long[0, 1L << 40]).Array[0, 20].Sample(pairs =>
        {
            var disks = pairs.Select((p, i) => new VmDiskUsage($"vm-{i}", p.Item1, p.Item2)).ToList();
            Assert.All(disks, d => Assert.InRange(d.CanGrowBytes, 0, d.VirtualBytes));
            var check = DiskSpace.Check(disks, long.MaxValue, "/h");
            var expected = disks.Sum(d => Math.Max(0, d.VirtualBytes - d.AllocatedBytes));
            Assert.StartsWith($"{disks.Count} VM disk", check.Detail, StringComparison.Ordinal);
            Assert.Contains($"grow by {expected / (1024.0 * 1024 * 1024):0.0} GiB", check.Detail, StringComparison.Ordinal);
        });
    }
}
