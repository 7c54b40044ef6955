using System.Formats.Tar;
using System.Text;
using CsCheck;
using Vmsan.Core.Errors;
using Vmsan.Images.Layers;
using Vmsan.Images.Model;
using static Vmsan.UnitTests.Images.TestImages;

namespace Vmsan.UnitTests.Images;

/// <summary>
/// Layer application on a real directory: overlay semantics (whiteouts, opaque directories, hard
/// links, replacing a symlink) and that no entry, however named and whatever symlinks the image
/// holds, writes outside the root. Runs as root (ownership is applied), like the CLI.
/// Safe by construction even against a broken applier: every host path an entry could reach if the
/// applier followed the image's symlinks on the host, or let a name climb out, is inside the test's own
/// temp directory (symlink targets and hard links point there, no test names a host path such as /etc).
/// </summary>
public sealed class LayerApplierTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-layers-").FullName;

    // Deep in the sacrificial dir: a broken applier letting names or relative links climb (at most 4
    // levels in these tests) still lands inside _dir, never on the host.
    private string Root => Path.Combine(_dir, "d1", "d2", "d3", "root");

    private string Beside => Path.GetDirectoryName(Root)!;

    /// <summary>Every file of the sacrificial dir outside the root (nothing may be there but what the test put).</summary>
    private List<string> OutsideRoot() =>
        Directory.EnumerateFileSystemEntries(_dir, "*", SearchOption.AllDirectories)
            .Where(p => p != Root && !p.StartsWith(Root + "/", StringComparison.Ordinal) && !Root.StartsWith(p + "/", StringComparison.Ordinal))
            .ToList();

    public void Dispose() => Directory.Delete(_dir, true);

    private static void Apply(LayerApplier a, byte[] tar, LayerCompression c = LayerCompression.None)
    {
        var blob = c switch
        {
            LayerCompression.Gzip => Gzip(tar),
            LayerCompression.Zstd => Zstd(tar),
            _ => tar,
        };
        a.Apply(new MemoryStream(blob), c, "test layer");
    }

    private string Read(string rel) => File.ReadAllText(Path.Combine(Root, rel));

    [Fact]
    public void Whiteouts_delete_lower_entries_and_an_opaque_directory_keeps_only_its_own_layer()
    {
        var a = new LayerApplier(Root);
        Apply(a, Tar(w =>
        {
            w.Dir("d");
            w.File("d/keep", "kept");
            w.File("d/gone", "x");
            w.Dir("d/sub");
            w.File("d/sub/deep", "x");
            w.Dir("o");
            w.File("o/old", "x");
            w.Dir("o/olddir");
            w.File("o/olddir/f", "x");
        }), LayerCompression.Gzip);
        Apply(a, Tar(w =>
        {
            w.File("d/.wh.gone", "");
            w.File("d/.wh.sub", "");
            w.File("o/new", "new");
            w.File("o/.wh..wh..opq", "");
            w.File("o/newer", "newer");
        }), LayerCompression.Zstd);
        Assert.Equal("kept", Read("d/keep"));
        Assert.False(File.Exists(Path.Combine(Root, "d/gone")));
        Assert.False(Directory.Exists(Path.Combine(Root, "d/sub")));
        // The marker empties what the layers below put there, not what this layer wrote before or after it.
        Assert.Equal(["new", "newer"], Directory.GetFileSystemEntries(Path.Combine(Root, "o")).Select(Path.GetFileName).Order().ToArray());
    }

    [Fact]
    public void Hard_links_share_the_inode_and_a_later_file_replaces_a_symlink_instead_of_writing_through_it()
    {
        var target = Path.Combine(_dir, "victim");
        File.WriteAllText(target, "host file");
        var a = new LayerApplier(Root);
        Apply(a, Tar(w =>
        {
            w.File("a", "data", uid: 1000, gid: 1001, mode: (UnixFileMode)0x1E4);
            w.HardLink("b", "a");
            w.Symlink("s", target);
        }));
        Apply(a, Tar(w => w.File("s", "image file")));
        Assert.Equal("host file", File.ReadAllText(target));
        Assert.Equal("image file", Read("s"));
        Assert.Null(new FileInfo(Path.Combine(Root, "s")).LinkTarget);
        var st = Stat(Path.Combine(Root, "b"));
        Assert.Equal((2, 1000, 1001), (st.Links, st.Uid, st.Gid));
        Assert.Equal((UnixFileMode)0x1E4, File.GetUnixFileMode(Path.Combine(Root, "a")));
    }

    [Fact]
    public void A_file_under_an_absolute_or_climbing_symlink_lands_inside_the_root()
    {
        var outside = Path.Combine(_dir, "outside");
        Directory.CreateDirectory(outside);
        var a = new LayerApplier(Root);
        Apply(a, Tar(w =>
        {
            // Both point at OUTSIDE on the host (an absolute path into the sacrificial dir; four levels up from
            // the root), so a broken applier would write there and nowhere else.
            w.Symlink("abs", outside);
            w.Symlink("rel", "../../../../outside");
            w.File("abs/one", "1");
            w.File("rel/two", "2");
        }));
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        // The guest sees abs -> OUTSIDE inside its own root, and rel's ".." stop at the root.
        Assert.Equal("1", Read(outside.TrimStart('/') + "/one"));
        Assert.Equal("2", Read("outside/two"));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../escape")]
    [InlineData("./../escape")]
    public void A_name_that_climbs_out_of_the_root_is_bad_image(string name)
    {
        var a = new LayerApplier(Root);
        var e = Assert.Throws<VmsanException>(() => Apply(a, Tar(w => { w.Dir("a"); w.File(name, "x"); })));
        Assert.Equal(ErrorCode.BadImage, e.Code);
        Assert.Empty(OutsideRoot());
    }

    [Fact]
    public void A_hard_link_to_a_file_outside_the_root_is_refused()
    {
        var a = new LayerApplier(Root);
        var victim = Path.Combine(Beside, "victim");
        File.WriteAllText(victim, "host file");
        var e = Assert.Throws<VmsanException>(() => Apply(a, Tar(w => w.HardLink("h", "../victim"))));
        Assert.Equal(ErrorCode.BadImage, e.Code);
        // Through an absolute symlink (to the victim's directory in the sacrificial dir) it resolves inside
        // the root, where there is no such file.
        var e2 = Assert.Throws<VmsanException>(() => Apply(a, Tar(w => { w.Symlink("up", Beside); w.HardLink("h", "up/victim"); })));
        Assert.Equal(ErrorCode.BadImage, e2.Code);
        Assert.False(File.Exists(Path.Combine(Root, "h")));
        Assert.Equal(1, Stat(victim).Links);
    }

    [Fact]
    public void A_layer_that_is_not_a_tar_is_bad_image()
    {
        var a = new LayerApplier(Root);
        var junk = new byte[4096];
        new Random(1).NextBytes(junk);
        Assert.Equal(ErrorCode.BadImage, Assert.Throws<VmsanException>(() => a.Apply(new MemoryStream(junk), LayerCompression.Gzip, "junk")).Code);
        var cut = Gzip(Tar(w => w.File("f", new string('x', 100_000))));
        Assert.Equal(ErrorCode.BadImage,
            Assert.Throws<VmsanException>(() => a.Apply(new MemoryStream(cut[..(cut.Length / 2)]), LayerCompression.Gzip, "cut")).Code);
    }

    private static Gen<T> Pick<T>(params T[] values) => Gen.Int[0, values.Length - 1].Select(i => values[i]);

    // No "..": names that climb out are the example test above. Without it, and with every symlink target
    // either relative without ".." or absolute into the test's own directory, a broken applier that
    // followed symlinks on the host could only reach paths inside that directory (checked below).
    private static readonly Gen<string> Segment = Pick("a", "b", "abs", "lnk", ".", "", ".wh.a", ".wh.abs", ".wh..wh..opq");

    // {S}: the sample's own sacrificial directory (holding its root and an "out" sibling), filled in per sample.
    private static readonly Gen<(TarEntryType Type, string Name, string Link)> Entry =
        Gen.Select(Pick(TarEntryType.RegularFile, TarEntryType.Directory, TarEntryType.SymbolicLink, TarEntryType.SymbolicLink, TarEntryType.HardLink),
            Segment.Array[1, 3].Select(s => string.Join('/', s) is { Length: > 0 } n ? n : "."),
            Pick("{S}", "{S}/out", "{S}/out/a", "{S}/root", "a", "b/a", ".", "abs", "lnk/b"));

    [Fact]
    public void No_sequence_of_entries_writes_outside_the_root()
    {
        var dir = Directory.CreateTempSubdirectory("vmsan-layers-prop-").FullName;
        try
        {
            var n = 0;
            Gen.Select(Entry.Array[1, 12], Entry.Array[0, 8]).Sample((layer1, layer2) =>
            {
                // A fresh pair per sample (an entry "." may leave the root with any mode); all under dir.
                var sample = Path.Combine(dir, "s" + Interlocked.Increment(ref n));
                var root = Path.Combine(sample, "root");
                var outside = Path.Combine(sample, "out");
                Directory.CreateDirectory(outside);
                var a = new LayerApplier(root);
                foreach (var layer in new[] { layer1, layer2 })
                {
                    var tar = Tar(w =>
                    {
                        foreach (var (type, name, link) in layer)
                            w.WriteEntry(type switch
                            {
                                TarEntryType.RegularFile => new PaxTarEntry(type, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("x")) },
                                TarEntryType.Directory => new PaxTarEntry(type, name),
                                _ => new PaxTarEntry(type, name) { LinkName = link.Replace("{S}", sample, StringComparison.Ordinal) },
                            });
                    });
                    try
                    {
                        a.Apply(new MemoryStream(tar), LayerCompression.None, "prop");
                    }
                    catch (VmsanException e) when (e.Code == ErrorCode.BadImage)
                    {
                    }
                    catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
                    {
                        // Entries the filesystem refuses (a directory over a file's hard link...): not an escape.
                    }
                }
                // A broken applier could also delete through a link: the root and its sibling must both survive.
                Assert.True(Directory.Exists(root) && Directory.Exists(outside), "the root or its sibling was deleted from inside the image");
                var escaped = Directory.GetFileSystemEntries(sample).Where(p => p != root && p != outside)
                    .Concat(Directory.GetFileSystemEntries(outside))
                    .Concat(Directory.GetFileSystemEntries(dir).Where(p => !Path.GetFileName(p).StartsWith('s'))).ToList();
                Assert.True(escaped.Count == 0, $"written outside the root: {string.Join(", ", escaped)}");
            }, iter: 2000);
        }
        finally
        {
            // rm -rf: entries may have left directories with modes .NET's recursive delete trips over.
            System.Diagnostics.Process.Start("rm", ["-rf", "--one-file-system", dir])!.WaitForExit();
        }
    }

    private static (long Links, int Uid, int Gid) Stat(string path)
    {
        var r = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%h %u %g", path]) { RedirectStandardOutput = true })!;
        var parts = r.StandardOutput.ReadToEnd().Trim().Split(' ');
        r.WaitForExit();
        return (long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
    }
}
