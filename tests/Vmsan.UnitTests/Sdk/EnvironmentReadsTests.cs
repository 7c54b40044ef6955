using System.Text.RegularExpressions;

namespace Vmsan.UnitTests.Sdk;

/// <summary>Environment variables are read in one configuration type per program (host: VmsanEnvironment; guest agent: AgentEnvironment), nowhere else.</summary>
public partial class EnvironmentReadsTests
{
    private static readonly string[] Allowed = ["src/Vmsan.Core/VmsanEnvironment.cs", "src/Vmsan.Agent/AgentEnvironment.cs"];

    [GeneratedRegex(@"\bEnvironment\s*\.\s*(GetEnvironmentVariable|GetEnvironmentVariables|ExpandEnvironmentVariables)\b")]
    private static partial Regex EnvironmentRead();

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vmsan.sln")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        return dir.FullName;
    }

    [Fact]
    public void No_source_outside_the_configuration_types_reads_the_environment()
    {
        var root = RepoRoot();
        var offenders = new List<string>();
        var scanned = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (rel.Contains("/obj/", StringComparison.Ordinal) || rel.Contains("/bin/", StringComparison.Ordinal))
                continue;
            scanned++;
            if (Allowed.Contains(rel))
                continue;
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
                if (!lines[i].TrimStart().StartsWith("//", StringComparison.Ordinal) && EnvironmentRead().IsMatch(lines[i]))
                    offenders.Add($"{rel}:{i + 1}: {lines[i].Trim()}");
        }

        Assert.True(scanned > 100, $"only {scanned} sources scanned under {root}/src");
        Assert.True(offenders.Count == 0, "environment read outside VmsanEnvironment/AgentEnvironment:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void The_scan_sees_a_read_when_there_is_one()
    {
        Assert.Matches(EnvironmentRead(), """var x = Environment.GetEnvironmentVariable("VMSAN_HOME");""");
        Assert.Matches(EnvironmentRead(), "foreach (var e in System.Environment.GetEnvironmentVariables())");
        Assert.DoesNotMatch(EnvironmentRead(), "VmsanEnvironment.Current.Home");
    }

    [Fact]
    public void The_host_configuration_reads_through_what_it_is_given_and_treats_empty_as_unset()
    {
        var env = new Vmsan.Core.VmsanEnvironment(n => n switch { "VMSAN_HOME" => "/h", "VMSAN_CLI" => "", "NO_COLOR" => "1", _ => null });

        Assert.Equal("/h", env.Home);
        Assert.Null(env.Cli);
        Assert.Null(env.Assets);
        Assert.True(env.NoColor);
    }
}
