using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// The library as a user has it: samples/Vmsan.Sample (built with these tests) drives VmsanClient end to end inside a
/// test-owned namespace — create, exec with streamed stdout/stderr, stdin streaming, upload, download, stop, remove —
/// with no vmsan CLI reachable: VMSAN_CLI empty and a PATH without it, so the sample must host the supervisor itself.
/// </summary>
public sealed class SdkSampleTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    private static string SampleDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vmsan.sln")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        // Same configuration as this test assembly (the project reference builds it alongside).
        var config = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var dll = Path.Combine(dir.FullName, "samples", "Vmsan.Sample", "bin", config, "net10.0", "Vmsan.Sample.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built");
        return dll;
    }

    [Fact]
    public async Task The_sample_creates_a_vm_execs_streams_copies_files_both_ways_stops_and_removes_it_without_the_cli()
    {
        var assets = Environment.GetEnvironmentVariable("VMSAN_ASSETS") is { Length: > 0 } a ? a : "/var/lib/vmsan";
        var run = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, "/usr/bin/dotnet", SampleDll()],
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
