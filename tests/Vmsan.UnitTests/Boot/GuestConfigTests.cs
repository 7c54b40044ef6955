using System.Text;
using Vmsan.Boot;
using Vmsan.Core.Errors;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.Boot;

public class GuestConfigTests
{
    private static readonly string Token = new('a', 64);

    private static GuestConfig Sample(string? dns = "10.0.0.53") =>
        new("vm-1a2b3c4d", Token, "172.30.0.2/30", "172.30.0.1", dns);

    [Fact]
    public void Render_writes_the_documented_keys_in_order()
    {
        var text = Sample().Render();

        Assert.Equal(
            $"VMSAN_ID=vm-1a2b3c4d\nVMSAN_TOKEN={Token}\nVMSAN_IP=172.30.0.2/30\nVMSAN_GW=172.30.0.1\nVMSAN_DNS=10.0.0.53\nVMSAN_MTU=1500\n",
            text);
    }

    [Fact]
    public void A_missing_resolver_renders_as_an_empty_value()
    {
        Assert.Contains("\nVMSAN_DNS=\n", Sample(dns: null).Render(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vm 1")]
    [InlineData("vm;reboot")]
    [InlineData("$(id)")]
    [InlineData("a\nVMSAN_TOKEN=x")]
    [InlineData("'x'")]
    [InlineData("\"x\"")]
    [InlineData("`x`")]
    [InlineData("a\\b")]
    [InlineData("a\tb")]
    [InlineData("é")]
    public void Unsafe_characters_are_rejected(string value)
    {
        Assert.False(GuestConfig.IsSafe(value));
        var ex = Assert.Throws<VmsanException>(() => (Sample() with { VmId = value }).Render());
        Assert.Contains("VMSAN_ID", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("172.30.0.2/30")]
    [InlineData("fd00::1")]
    [InlineData("a-b_c.d+e=f")]
    public void Safe_values_are_accepted(string value)
    {
        Assert.True(GuestConfig.IsSafe(value));
    }

    [Fact]
    public void Every_field_is_checked()
    {
        Assert.Throws<VmsanException>(() => (Sample() with { Token = "a b" }).Render());
        Assert.Throws<VmsanException>(() => (Sample() with { GuestCidr = "1;2" }).Render());
        Assert.Throws<VmsanException>(() => (Sample() with { Gateway = "$GW" }).Render());
        Assert.Throws<VmsanException>(() => Sample(dns: "1.1.1.1 8.8.8.8").Render());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public async Task WriteInitrd_pads_the_base_to_4_bytes_and_appends_a_cpio_readable_config(int baseLength)
    {
        // Arrange
        using var tmp = new TempDir();
        var baseBytes = Enumerable.Range(0, baseLength).Select(i => (byte)(0xA0 + i)).ToArray();
        File.WriteAllBytes(tmp.Combine("base.img"), baseBytes);
        var config = Sample();

        // Act
        config.WriteInitrd(tmp.Combine("base.img"), tmp.Combine("initrd.img"));

        // Assert
        var initrd = File.ReadAllBytes(tmp.Combine("initrd.img"));
        var aligned = (baseLength + 3) / 4 * 4;
        Assert.Equal(baseBytes, initrd[..baseLength]);
        Assert.All(initrd[baseLength..aligned], b => Assert.Equal(0, b));
        Assert.Equal("070701", Encoding.ASCII.GetString(initrd, aligned, 6));
        Directory.CreateDirectory(tmp.Combine("out"));
        var (code, stderr) = await Cpio.ExtractAsync(initrd[aligned..], tmp.Combine("out"));
        Assert.True(code == 0, stderr);
        Assert.Equal(config.Render(), File.ReadAllText(tmp.Combine("out", "vmsan", "config")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tmp.Combine("out", "vmsan", "config")));
    }

    [Fact]
    public void WriteInitrd_creates_a_0600_file_and_leaves_no_temp_file()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.Combine("base.img"), [1, 2, 3, 4]);

        Sample().WriteInitrd(tmp.Combine("base.img"), tmp.Combine("initrd.img"));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tmp.Combine("initrd.img")));
        Assert.Equal(["base.img", "initrd.img"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_base_newc_archive_followed_by_the_config_extracts_both()
    {
        // The kernel unpacks concatenated archives; cpio reads the first only, so check each half.
        using var tmp = new TempDir();
        var first = new NewcArchive();
        first.AddFile("init", "#!/bin/sh\n"u8, 0x1ED);
        var baseArchive = first.Finish().Concat(new byte[] { 0, 0, 0 }).ToArray(); // an unaligned base
        File.WriteAllBytes(tmp.Combine("base.img"), baseArchive);

        Sample().WriteInitrd(tmp.Combine("base.img"), tmp.Combine("initrd.img"));

        var initrd = File.ReadAllBytes(tmp.Combine("initrd.img"));
        var tailAt = (baseArchive.Length + 3) / 4 * 4;
        var (code, stderr) = await Cpio.ExtractAsync(initrd, tmp.Path);
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(tmp.Combine("init")));
        (code, stderr) = await Cpio.ExtractAsync(initrd[tailAt..], tmp.Path);
        Assert.True(code == 0, stderr);
        Assert.StartsWith("VMSAN_ID=vm-1a2b3c4d\n", File.ReadAllText(tmp.Combine("vmsan", "config")), StringComparison.Ordinal);
    }
}
