using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

public sealed class ParallelTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    /// <summary>The "must keep holding": 16 creates at once get distinct ids, slots and addresses, all work.</summary>
    [Fact]
    public async Task Sixteen_parallel_creates_give_sixteen_distinct_working_vms_and_rm_leaves_nothing()
    {
        const int n = 16;
        // 16 TCG boots at once on a small shared machine can take longer than the default 2-minute boot timeout;
        // what this test checks is that they all come up distinct, not how fast.
        var env = new Dictionary<string, string> { ["VMSAN_HOME"] = _w.Home, ["VMSAN_CLI"] = VmsanWorld.Cli, ["VMSAN_BOOT_TIMEOUT"] = "540" };
        var creates = Enumerable.Range(0, n)
            .Select(_ => Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "create", "--memory", "128", "--json"], env, TimeSpan.FromMinutes(10)))
            .ToList();
        var results = await Task.WhenAll(creates);
        foreach (var r in results)
            Assert.True(r.ExitCode == 0, r.ToString());
        var ids = results.Select(r => JsonDocument.Parse(r.Stdout).RootElement.GetProperty("id").GetString()!).ToList();
        Assert.Equal(n, ids.Distinct().Count());

        var networks = ids.Select(id => _w.State(id)!.Value.GetProperty("network")).ToList();
        Assert.Equal(n, networks.Select(x => x.GetProperty("slot").GetInt32()).Distinct().Count());
        Assert.Equal(n, networks.Select(x => x.GetProperty("hostIp").GetString()).Distinct().Count());
        Assert.Equal(n, networks.Select(x => x.GetProperty("nsIp").GetString()).Distinct().Count());
        Assert.Equal(n, networks.Select(x => x.GetProperty("netns").GetString()).Distinct().Count());
        Assert.Equal(n, networks.Select(x => x.GetProperty("hostVeth").GetString()).Distinct().Count());

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
