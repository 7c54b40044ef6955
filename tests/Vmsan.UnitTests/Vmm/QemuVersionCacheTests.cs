using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

/// <summary>A fake QEMU (a script that counts its runs) stands in for the binary.</summary>
public sealed class QemuVersionCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qemu-version-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string FakeQemu(string version)
    {
        var path = Path.Combine(_dir, "qemu-system-x86_64");
        File.WriteAllText(path, $"#!/bin/sh\necho run >> {_dir}/runs\necho 'QEMU emulator version {version}'\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED); // 0755
        return path;
    }

    private int Runs() => File.Exists(Path.Combine(_dir, "runs")) ? File.ReadAllLines(Path.Combine(_dir, "runs")).Length : 0;

    [Fact]
    public void The_version_is_run_once_and_then_read_from_the_cache()
    {
        var qemu = FakeQemu("7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)");
        var cache = Path.Combine(_dir, "cache");
        var first = QemuVersionCache.Output(qemu, cache);
        var second = QemuVersionCache.Output(qemu, cache);
        Assert.Equal(first, second);
        Assert.Equal("7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)", QemuCommandLine.ParseBuild(second!));
        Assert.Equal(1, Runs());
    }

    [Fact]
    public void A_replaced_binary_is_run_again_and_its_new_version_replaces_the_cached_one()
    {
        var cache = Path.Combine(_dir, "cache");
        var qemu = FakeQemu("7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)");
        File.SetLastWriteTimeUtc(qemu, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.Contains("7.2.19", QemuVersionCache.Output(qemu, cache), StringComparison.Ordinal);
        // An upgrade: another build, another size and time.
        FakeQemu("9.2.0 (Debian 1:9.2+ds-1)");
        Assert.Equal(new Version(9, 2), QemuCommandLine.ParseVersion(QemuVersionCache.Output(qemu, cache)!));
        Assert.Equal(new Version(9, 2), QemuCommandLine.ParseVersion(QemuVersionCache.Output(qemu, cache)!));
        Assert.Equal(2, Runs());
    }

    [Fact]
    public void Without_a_cache_directory_it_runs_each_time_and_a_missing_binary_gives_null()
    {
        var qemu = FakeQemu("7.2.19");
        QemuVersionCache.Output(qemu, null);
        QemuVersionCache.Output(qemu, null);
        Assert.Equal(2, Runs());
        Assert.Null(QemuVersionCache.Output(Path.Combine(_dir, "absent"), Path.Combine(_dir, "cache")));
    }
}
