using Vmsan.Core;
using Vmsan.Runtimes;

namespace Vmsan.UnitTests.Runtimes;

/// <summary>Which image version a create uses, and which versions a prune may delete (real files and symlinks in a temp dir).</summary>
public sealed class RuntimeVersionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-rtversions-").FullName;
    private readonly RuntimeCatalog _catalog;

    public RuntimeVersionsTests() => _catalog = new RuntimeCatalog(new VmsanPaths(Path.Combine(_dir, "home"), Path.Combine(_dir, "assets")));

    public void Dispose() => Directory.Delete(_dir, true);

    private string RtDir => Path.Combine(_dir, "assets", "runtimes", "py");

    private string Version(string name)
    {
        Directory.CreateDirectory(RtDir);
        var f = Path.Combine(RtDir, name);
        File.WriteAllText(f, "x");
        return f;
    }

    private void Point(string target)
    {
        var pointer = Path.Combine(RtDir, "rootfs.ext4");
        File.Delete(pointer);
        File.CreateSymbolicLink(pointer, target);
    }

    [Fact]
    public void A_runtime_that_was_never_built_has_no_current_image()
    {
        Assert.Null(_catalog.CurrentImage("py"));
        Assert.Empty(_catalog.Versions("py"));
    }

    [Fact]
    public void The_current_image_is_the_version_file_the_pointer_names_not_the_pointer()
    {
        var v1 = Version("rootfs-20261204T190000Z-aaaaaaaa.ext4");
        var v2 = Version("rootfs-20261204T200000Z-bbbbbbbb.ext4");
        Point(Path.GetFileName(v1));
        Assert.Equal(v1, _catalog.CurrentImage("py"));
        Point(Path.GetFileName(v2));
        Assert.Equal(v2, _catalog.CurrentImage("py"));
        // The pointer itself is not a version.
        Assert.Equal([v1, v2], _catalog.Versions("py"));
    }

    [Fact]
    public void A_pointer_to_a_missing_version_is_not_built()
    {
        Version("rootfs-20261204T190000Z-aaaaaaaa.ext4");
        Point("rootfs-19990101T000000Z-gone.ext4");
        Assert.Null(_catalog.CurrentImage("py"));
    }

    [Fact]
    public void An_image_from_before_versioned_builds_is_its_own_current_image()
    {
        var plain = Version("rootfs.ext4");
        Assert.Equal(plain, _catalog.CurrentImage("py"));
        Assert.Empty(_catalog.Versions("py"));
    }

    [Fact]
    public void Prune_keeps_the_current_version_those_in_use_and_those_open()
    {
        string[] all = ["/r/rootfs-1.ext4", "/r/rootfs-2.ext4", "/r/rootfs-3.ext4", "/r/rootfs-4.ext4"];
        var (unused, used) = RuntimeCatalog.Partition(all, "/r/rootfs-4.ext4", new HashSet<string> { "/r/rootfs-1.ext4" }, v => v == "/r/rootfs-2.ext4");
        Assert.Equal(["/r/rootfs-3.ext4"], unused);
        Assert.Equal(["/r/rootfs-1.ext4", "/r/rootfs-2.ext4"], used);
    }

    [Fact]
    public void Prune_never_selects_the_current_version_whatever_else_is_true()
    {
        var (unused, used) = RuntimeCatalog.Partition(["/r/a.ext4"], "/r/a.ext4", new HashSet<string>(), _ => false);
        Assert.Empty(unused);
        Assert.Empty(used);
    }
}
