using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

public sealed class ParallelTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    [Fact]
    public async Task Eight_parallel_creates_give_eight_distinct_working_vms_and_rm_leaves_nothing()
    {
        var creates = Enumerable.Range(0, 8).Select(_ => _w.VmsanWithTimeout(TimeSpan.FromMinutes(8), "create", "--memory", "192", "--json")).ToList();
        var results = await Task.WhenAll(creates);
        foreach (var r in results)
            Assert.True(r.ExitCode == 0, r.ToString());
        var ids = results.Select(r => JsonDocument.Parse(r.Stdout).RootElement.GetProperty("id").GetString()!).ToList();
        Assert.Equal(8, ids.Distinct().Count());

        var slots = ids.Select(id => _w.State(id)!.Value.GetProperty("network").GetProperty("slot").GetInt32()).ToList();
        Assert.Equal(8, slots.Distinct().Count());

        var execs = await Task.WhenAll(ids.Select(id => _w.Vmsan("exec", id, "hostname")));
        for (var i = 0; i < ids.Count; i++)
            Assert.Equal(ids[i] + "\n", execs[i].Stdout);

        var rm = await _w.Vmsan(["rm", "-f", .. ids]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        foreach (var id in ids)
            Assert.Empty(await _w.Leftovers(id));
        Assert.Empty((await _w.VmsanJson("list")).EnumerateArray());
    }
}
