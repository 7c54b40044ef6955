using System.Text.RegularExpressions;

namespace Vmsan.UnitTests.Architecture;

/// <summary>
/// One home for libc: every native import of vmsan lives in src/Vmsan.Interop, one native function per
/// file (overloads of it in that same file), so a call's signature, errno handling and comment exist once.
/// </summary>
public sealed partial class InteropTreeTests
{
    private static readonly string Src = Path.Combine(RepoRoot(), "src");

    [Fact]
    public void No_native_import_outside_the_interop_tree()
    {
        var outside = SourceFiles()
            .Where(f => !f.StartsWith(Path.Combine(Src, "Vmsan.Interop") + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            .Where(f => ImportAttribute().IsMatch(File.ReadAllText(f)))
            .Select(f => Path.GetRelativePath(Src, f))
            .ToList();

        Assert.Empty(outside);
    }

    [Fact]
    public void Each_native_function_is_imported_in_one_file_only()
    {
        var byEntryPoint = SourceFiles()
            .SelectMany(f => EntryPoint().Matches(File.ReadAllText(f)).Select(m => (EntryPoint: m.Groups[1].Value, File: Path.GetRelativePath(Src, f))))
            .GroupBy(x => x.EntryPoint)
            .Where(g => g.Select(x => x.File).Distinct().Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(x => x.File).Distinct())}")
            .ToList();

        Assert.Empty(byEntryPoint);
    }

    [Fact]
    public void The_scan_sees_the_imports_it_checks()
    {
        // Guards the two tests above against a pattern that silently matches nothing.
        var entryPoints = SourceFiles().SelectMany(f => EntryPoint().Matches(File.ReadAllText(f))).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Contains("open", entryPoints);
        Assert.Contains("posix_spawn", entryPoints);
        Assert.Contains("setns", entryPoints);
        Assert.True(entryPoints.Count > 50, $"only {entryPoints.Count} entry points found");
    }

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vmsan.sln")))
            dir = dir.Parent;
        return dir!.FullName;
    }

    [GeneratedRegex(@"\[(LibraryImport|DllImport)\s*\(")]
    private static partial Regex ImportAttribute();

    [GeneratedRegex(@"\[(?:LibraryImport|DllImport)\s*\([^\]]*EntryPoint\s*=\s*""([^""]+)""")]
    private static partial Regex EntryPoint();
}
