using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// The library as a user has it: Vmsan.Sdk is packed (<c>dotnet pack</c>) into a folder feed, samples/Vmsan.Sample is
/// copied out of the repository and built against that PACKAGE alone (offline: the feed plus the machine's NuGet
/// cache as sources, a fresh packages folder so no stale copy of the package is used), and the built program drives
/// VmsanClient end to end inside a test-owned namespace — create, exec with streamed stdout/stderr, stdin streaming,
/// upload, download, stop, remove — with no vmsan CLI reachable: VMSAN_CLI empty and a PATH without it, so the sample
/// must host the supervisor itself. One VM in all.
/// </summary>
public sealed class SdkSampleTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vmsan-pack-");

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public async ValueTask DisposeAsync()
    {
        await _w.DisposeAsync();
        _work.Delete(recursive: true);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vmsan.sln")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        return dir.FullName;
    }

    private static async Task<ProcResult> Dotnet(IDictionary<string, string> env, params string[] args)
    {
        var run = await Sh.RunAsync("dotnet", [.. args, "-nologo"], env, TimeSpan.FromMinutes(8));
        Assert.True(run.ExitCode == 0, $"dotnet {string.Join(' ', args)}: {run}");
        return run;
    }

    /// <summary>Packs the SDK, checks what the package carries, and builds the sample against it; returns the sample's dll.</summary>
    private async Task<string> BuildSampleAgainstThePackage()
    {
        var repo = RepoRoot();
        var feed = Directory.CreateDirectory(Path.Combine(_work.FullName, "feed")).FullName;
        var env = new Dictionary<string, string>
        {
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
            ["NUGET_PACKAGES"] = Path.Combine(_work.FullName, "packages"),
        };
        await Dotnet(env, "pack", Path.Combine(repo, "src", "Vmsan.Sdk", "Vmsan.Sdk.csproj"), "-c", "Release", "-o", feed);

        var nupkg = Assert.Single(Directory.GetFiles(feed, "Vmsan.Sdk.*.nupkg"));
        using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
        {
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
            Assert.Contains("README.md", entries);
            // Every vmsan assembly the SDK needs at run time is inside (no vmsan package dependencies to resolve)...
            var implementation = Directory.GetFiles(Path.Combine(repo, "src"), "*.csproj", SearchOption.AllDirectories)
                .Select(Path.GetFileNameWithoutExtension)
                .Where(n => n is not ("Vmsan.Cli" or "Vmsan.Agent"))
                .ToList();
            foreach (var name in implementation)
                Assert.True(entries.Contains($"lib/net10.0/{name}.dll"), $"{name}.dll is not in the package: {string.Join(", ", entries)}");
            // ...but a user compiles against the SDK alone: its reference assembly and docs, nothing of the implementation.
            Assert.Equal(["ref/net10.0/Vmsan.Sdk.dll", "ref/net10.0/Vmsan.Sdk.xml"], entries.Where(e => e.StartsWith("ref/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
            using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
            var spec = await nuspec.ReadToEndAsync();
            Assert.DoesNotContain("id=\"Vmsan.", spec, StringComparison.Ordinal);
            Assert.Contains("<readme>README.md</readme>", spec, StringComparison.Ordinal);
        }

        // The sample as a user would have it: its code, a project of its own naming the package, no repository props.
        var version = Path.GetFileNameWithoutExtension(nupkg)["Vmsan.Sdk.".Length..];
        var app = Directory.CreateDirectory(Path.Combine(_work.FullName, "app")).FullName;
        File.Copy(Path.Combine(repo, "samples", "Vmsan.Sample", "Program.cs"), Path.Combine(app, "Program.cs"));
        await File.WriteAllTextAsync(Path.Combine(app, "Vmsan.Sample.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Vmsan.Sdk" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        var home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="vmsan" value="{feed}" />
                <add key="machine-cache" value="{Path.Combine(home, ".nuget", "packages")}" />
              </packageSources>
            </configuration>
            """);
        await Dotnet(env, "build", Path.Combine(app, "Vmsan.Sample.csproj"), "-c", "Release", "-o", Path.Combine(app, "out"));
        var dll = Path.Combine(app, "out", "Vmsan.Sample.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built");
        return dll;
    }

    [Fact]
    public async Task The_sample_built_against_the_package_creates_a_vm_execs_streams_copies_files_both_ways_stops_and_removes_it_without_the_cli()
    {
        var assets = Environment.GetEnvironmentVariable("VMSAN_ASSETS") is { Length: > 0 } a ? a : "/var/lib/vmsan";
        var sample = await BuildSampleAgainstThePackage();
        var run = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, "/usr/bin/dotnet", sample],
            new Dictionary<string, string>
            {
                ["VMSAN_HOME"] = _w.Home,
                ["VMSAN_ASSETS"] = assets,
                ["VMSAN_CLI"] = "",
                ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
            }, TimeSpan.FromMinutes(5));

        Assert.True(run.ExitCode == 0, run.ToString());
        using var doc = JsonDocument.Parse(run.Stdout);
        var r = doc.RootElement;
        Assert.Equal(3, r.GetProperty("exitCode").GetInt32());
        Assert.Equal("out\n", r.GetProperty("stdout").GetString());
        Assert.Equal("err\n", r.GetProperty("stderr").GetString());
        Assert.Equal("HELLO FROM THE SAMPLE", r.GetProperty("stdinRoundTrip").GetString());
        Assert.Equal(0, r.GetProperty("stdinExitCode").GetInt32());
        Assert.Equal(1, r.GetProperty("uploadedFiles").GetInt64());
        Assert.Equal(300 * 1024, r.GetProperty("uploadedBytes").GetInt64());
        Assert.Equal(r.GetProperty("localSha256").GetString(), r.GetProperty("guestSha256").GetString());
        Assert.Equal(300 * 1024, r.GetProperty("downloadedBytes").GetInt64());
        Assert.True(r.GetProperty("downloadMatches").GetBoolean());
        Assert.Equal("stopped", r.GetProperty("statusAfterStop").GetString());
        Assert.Equal("VM_NOT_FOUND", r.GetProperty("afterRemove").GetString());
        // No vmsan binary was reachable, so the supervisor was the sample itself (dotnet + its dll); nothing is left.
        Assert.Empty(await _w.Leftovers(r.GetProperty("id").GetString()!));
    }
}
