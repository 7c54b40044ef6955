using System.Formats.Tar;
using CsCheck;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Tests.Files;

/// <summary>Property tests: whatever names (and symlinks) an archive holds, nothing lands outside the root.</summary>
public sealed class TarPathPropertyTests
{
    private static Gen<T> Pick<T>(params T[] values) => Gen.Int[0, values.Length - 1].Select(i => values[i]);

    private static readonly Gen<string> GenComponent = Pick(
        "a", "b", "..", ".", "", "/", "//", "./", "../", "\0", "ü", "a\0b", " ", "...", ".hidden", new string('x', 256), new string('y', 40));

    private static readonly Gen<string> GenName = GenComponent.Array[1, 8].Select(parts => string.Concat(parts.Select((p, i) => i == 0 ? p : "/" + p)));

    [Fact]
    public void Accepted_names_always_resolve_inside_the_root()
    {
        const string Root = "/srv/root";
        GenName.Sample(name =>
        {
            if (!TarPaths.TryNormalize(name, out var relative, out var reason))
            {
                Assert.False(string.IsNullOrEmpty(reason));
                return;
            }

            Assert.DoesNotContain('\0', relative);
            Assert.False(relative.StartsWith('/'));
            var joined = Path.Join(Root, relative);
            var full = Path.GetFullPath(joined);
            Assert.True(TarPaths.IsWithin(Root, full), $"'{name}' -> '{full}'");
            // Already normalized: nothing for GetFullPath to collapse.
            Assert.Equal(relative.Length == 0 ? Root : joined, full);
        }, iter: 5000);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/etc/passwd")]
    [InlineData("//etc/passwd")]
    [InlineData("a/..")]
    [InlineData("a\0b")]
    [InlineData("")]
    public void Unsafe_names_are_refused(string name) => Assert.False(TarPaths.TryNormalize(name, out _, out _));

    [Theory]
    [InlineData("./a//b/", "a/b")]
    [InlineData("./", "")]
    [InlineData("a/./b", "a/b")]
    [InlineData("...", "...")]
    public void Harmless_names_are_normalized(string name, string expected)
    {
        Assert.True(TarPaths.TryNormalize(name, out var relative, out _));
        Assert.Equal(expected, relative);
    }

    private static readonly Gen<(TarEntryType Type, string Name, string Link)> GenEntry = Gen.Select(
        Pick(TarEntryType.RegularFile, TarEntryType.Directory, TarEntryType.SymbolicLink, TarEntryType.HardLink),
        Pick("a", "b", "a/b", "a/c", "s", "s/x", "s/y/z", "t/u", "../o", "a/../../o", "./a", "b/s", "b/s/evil"),
        // Relative escapes point into the sandbox's "outside" so a leak is seen; absolute ones at nothing that exists.
        Pick("..", "../..", "../outside", "../../outside", "../../../outside", "/nonexistent-vmsan", "a", "a/b", "s", ".", "b"),
        (t, n, l) => (t, n, l));

    [Fact]
    public void Extraction_of_random_archives_never_writes_outside_the_root()
    {
        GenEntry.Array[1, 10].Sample(entries =>
        {
            using var sandbox = new TempDir();
            Directory.CreateDirectory(sandbox["root"]);
            Directory.CreateDirectory(sandbox["outside"]);
            File.WriteAllText(sandbox["canary"], "c");
            var before = sandbox.List();

            using var archive = new MemoryStream();
            using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var (type, name, link) in entries)
                {
                    var entry = new PaxTarEntry(type, name) { Mode = (UnixFileMode)0b110_100_100 };
                    if (type is TarEntryType.SymbolicLink or TarEntryType.HardLink)
                    {
                        entry.LinkName = link;
                    }
                    else if (type == TarEntryType.RegularFile)
                    {
                        entry.DataStream = new MemoryStream("data"u8.ToArray());
                    }

                    writer.WriteEntry(entry);
                }
            }

            archive.Position = 0;
            try
            {
                new TarExtractor(sandbox["root"]).ExtractAsync(archive).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is TarEntryRejectedException or TarWriteException)
            {
            }

            var after = sandbox.List().Where(p => p != "root" && !p.StartsWith("root/", StringComparison.Ordinal)).ToList();
            Assert.Equal(before.Where(p => p != "root").ToList(), after);
            Assert.Empty(Directory.EnumerateFileSystemEntries(sandbox["outside"]));
            Assert.Equal("c", File.ReadAllText(sandbox["canary"]));
            Assert.DoesNotContain(sandbox.List(), p => p.Contains(".vmsan-tmp-", StringComparison.Ordinal));
        }, iter: 300);
    }

    [Fact]
    public async Task A_hard_link_to_itself_leaves_no_temp_file()
    {
        // Found by the property above (seed 50zFKQdgJGe5): rename(2) of one inode's two names is a no-op.
        using var sandbox = new TempDir();
        Directory.CreateDirectory(sandbox["root"]);
        using var archive = new MemoryStream();
        using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "s") { DataStream = new MemoryStream("data"u8.ToArray()) });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "s") { LinkName = "s" });
        }

        archive.Position = 0;
        await new TarExtractor(sandbox["root"]).ExtractAsync(archive, TestContext.Current.CancellationToken);

        Assert.Equal(["s"], Directory.EnumerateFileSystemEntries(sandbox["root"]).Select(Path.GetFileName).ToList());
        Assert.Equal("data", File.ReadAllText(Path.Combine(sandbox["root"], "s")));
    }
}
