using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vmsan.Core.Errors;
using Vmsan.Core.Processes;
using Vmsan.Network;
using Xunit;

namespace Vmsan.UnitTests.Network;

/// <summary>Real namespaces, veths, TAPs and nftables, inside a throwaway world (see <see cref="NetnsWorld"/>).</summary>
public sealed class VmNetworkManagerTests
{
    [Fact(Timeout = 60_000)]
    public async Task Setup_builds_the_namespace_veth_tap_routes_and_nat_tables()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var vmId = world.NewVmId();

        var info = await world.Manager().SetupAsync(vmId, 5, TestContext.Current.CancellationToken);

        var plan = info.Plan;
        Assert.Equal(VmNetworkPlan.For(vmId, 5), plan);
        Assert.True(NetnsWorld.NetnsExists(plan.NetnsName));
        Assert.Equal(["10.231.0.21/30"], await AddressesAsync(world.HostNs, plan.HostLink));
        Assert.Equal(["10.231.0.22/30"], await AddressesAsync(plan.NetnsName, "eth0"));
        Assert.Equal(["172.30.0.1/30"], await AddressesAsync(plan.NetnsName, "tap0"));
        Assert.Contains("tun", await Sh.RunAsync("ip", "-n", plan.NetnsName, "-d", "link", "show", "tap0"));
        Assert.Contains("UP", await Sh.RunAsync("ip", "-n", plan.NetnsName, "link", "show", "lo"));
        Assert.Contains("default via 10.231.0.21 dev eth0", await Sh.RunAsync("ip", "-n", plan.NetnsName, "route", "show", "default"));
        // No IPv6 uplink: IPv6 a guest routes itself is refused at once by the namespace.
        Assert.Contains("prohibit default", await Sh.RunAsync("ip", "-n", plan.NetnsName, "-6", "route", "show"));
        Assert.Equal("1", (await Sh.InNetnsAsync(plan.NetnsName, "cat", "/proc/sys/net/ipv4/ip_forward")).Trim());
        Assert.Equal("1", (await Sh.InNetnsAsync(world.HostNs, "cat", "/proc/sys/net/ipv4/ip_forward")).Trim());

        var vmTable = await Sh.InNetnsAsync(plan.NetnsName, "nft", "list", "table", "inet", "vmsan");
        Assert.Contains("oifname \"eth0\" masquerade", vmTable);
        Assert.Contains("chain forward", vmTable);
        var hostTable = await Sh.InNetnsAsync(world.HostNs, "nft", "list", "table", "ip", "vmsan");
        Assert.Contains("ip saddr 10.231.0.0/16 oifname != \"vsn-*\" masquerade", hostTable);
        Assert.Contains("ip daddr 10.231.0.0/16 ct state established,related accept", hostTable);

        // The veth works both ways: the host end reaches the namespace end.
        await AssertTcpReachableAsync(world.HostNs, plan.NetnsName, plan.NamespaceAddress);
        // And nothing leaked into the machine's own namespace.
        Assert.DoesNotContain(plan.HostLink, await Sh.RunAsync("ip", "-o", "link", "show"));
    }

    [Fact(Timeout = 60_000)]
    public async Task The_agent_port_inside_the_vm_namespace_is_reachable_through_a_namespace_socket()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var vmId = world.NewVmId();
        var info = await world.Manager().SetupAsync(vmId, 1, TestContext.Current.CancellationToken);
        using var server = await NetnsWorld.StartEchoServerAsync(info.NetnsName, VmNetworkPlan.GatewayAddress);
        var ownNetns = new FileInfo("/proc/thread-self/ns/net").LinkTarget;

        using var socket = await NamespaceSocket.ConnectAsync(info.NetnsName, server.EndPoint, TestContext.Current.CancellationToken);

        Assert.Equal("hello vm", await EchoAsync(socket, "hello vm"));
        Assert.Equal(new FileInfo("/proc/thread-self/ns/net").LinkTarget, ownNetns);
        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, ownNetns);
    }

    [Fact(Timeout = 60_000)]
    public async Task Guest_traffic_reaches_the_uplink_masqueraded_by_both_namespaces()
    {
        await using var world = await NetnsWorld.CreateAsync();
        await world.AddUplinkAsync();
        var vmId = world.NewVmId();
        var info = await world.Manager().SetupAsync(vmId, 7, TestContext.Current.CancellationToken);
        // Without QEMU tap0 has no other end, so a "guest" namespace hangs off the VM namespace on
        // its own veth (test-only addresses) and sends what a guest would: forwarded through the
        // VM namespace and out of its eth0, then through the host namespace to the uplink.
        var guestNs = await world.AddNetnsAsync($"vt-{world.Id}-g");
        await Sh.RunAsync("ip", "-n", info.NetnsName, "link", "add", $"vtg-{world.Id}", "type", "veth", "peer", "name", "g0", "netns", guestNs);
        await Sh.BatchAsync(info.NetnsName, $"address add 172.31.255.1/30 dev vtg-{world.Id}", $"link set vtg-{world.Id} up");
        await Sh.BatchAsync(guestNs, "address add 172.31.255.2/30 dev g0", "link set g0 up", "route add default via 172.31.255.1");
        using var server = await NetnsWorld.StartEchoServerAsync(world.UplinkNs!, NetnsWorld.UplinkServer);

        // Without masquerading at both hops the uplink could not answer (it has no route back), so a
        // completed connect is itself the proof; the bounded wait keeps a broken path from hanging.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(10));

        using (var fromVmNs = await NamespaceSocket.ConnectAsync(info.NetnsName, server.EndPoint, cts.Token))
        {
            Assert.Equal("from vm netns", await EchoAsync(fromVmNs, "from vm netns"));
        }
        using var fromGuest = await NamespaceSocket.ConnectAsync(guestNs, server.EndPoint, cts.Token);

        Assert.Equal("from guest", await EchoAsync(fromGuest, "from guest"));
        // The uplink only ever sees the host's own uplink address.
        Assert.Equal([NetnsWorld.HostUplinkAddress, NetnsWorld.HostUplinkAddress], server.Clients.Select(c => c.Address));
    }

    [Fact(Timeout = 60_000)]
    public async Task Teardown_removes_everything_and_can_be_repeated()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var manager = world.Manager();
        var vmId = world.NewVmId();
        var info = await manager.SetupAsync(vmId, 2, TestContext.Current.CancellationToken);

        await manager.TeardownAsync(vmId, TestContext.Current.CancellationToken);

        Assert.False(NetnsWorld.NetnsExists(info.NetnsName));
        Assert.DoesNotContain(info.NetnsName, await Sh.RunAsync("ip", "netns", "list"));
        Assert.DoesNotContain(info.Plan.HostLink, await Sh.RunAsync("ip", "-n", world.HostNs, "-o", "link", "show"));
        await manager.TeardownAsync(vmId, TestContext.Current.CancellationToken);
        await manager.TeardownAsync(world.NewVmId(), TestContext.Current.CancellationToken);
    }

    [Fact(Timeout = 60_000)]
    public async Task Setup_again_completes_a_partial_network_without_duplicating_anything()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var manager = world.Manager();
        var vmId = world.NewVmId();
        var plan = VmNetworkPlan.For(vmId, 3);
        // A previous attempt died after creating the namespace only.
        await Sh.RunAsync("ip", "netns", "add", plan.NetnsName);

        await manager.SetupAsync(vmId, 3, TestContext.Current.CancellationToken);
        await Sh.RunAsync("ip", "-n", plan.NetnsName, "link", "delete", "tap0");
        await manager.SetupAsync(vmId, 3, TestContext.Current.CancellationToken);
        await manager.SetupAsync(vmId, 3, TestContext.Current.CancellationToken);

        Assert.Equal(["10.231.0.13/30"], await AddressesAsync(world.HostNs, plan.HostLink));
        Assert.Equal(["10.231.0.14/30"], await AddressesAsync(plan.NetnsName, "eth0"));
        Assert.Equal(["172.30.0.1/30"], await AddressesAsync(plan.NetnsName, "tap0"));
        Assert.Equal(1, await RuleCountAsync(plan.NetnsName, "postrouting", "inet"));
        Assert.Equal(2, await RuleCountAsync(plan.NetnsName, "forward", "inet"));
        Assert.Equal(1, await RuleCountAsync(world.HostNs, "postrouting"));
        Assert.Equal(2, await RuleCountAsync(world.HostNs, "forward"));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_failure_midway_removes_what_setup_created()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var vmId = world.NewVmId();
        var plan = VmNetworkPlan.For(vmId, 4);
        var manager = world.Manager(new FailingRunner(args => args.Contains("tuntap")));

        var ex = await Assert.ThrowsAsync<VmsanException>(() => manager.SetupAsync(vmId, 4, TestContext.Current.CancellationToken));

        Assert.Equal(ErrorCode.NetworkSetupFailed, ex.Code);
        Assert.Contains("tuntap", ex.Message);
        Assert.NotNull(ex.Fix);
        Assert.False(NetnsWorld.NetnsExists(plan.NetnsName));
        Assert.DoesNotContain(plan.HostLink, await Sh.RunAsync("ip", "-n", world.HostNs, "-o", "link", "show"));
    }

    [Fact(Timeout = 120_000)]
    public async Task Eight_concurrent_setups_all_succeed_and_share_one_host_table()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var manager = world.Manager();
        var vmIds = Enumerable.Range(0, 8).Select(_ => world.NewVmId()).ToArray();

        var infos = await Task.WhenAll(vmIds.Select((id, i) => manager.SetupAsync(id, 100 + i, TestContext.Current.CancellationToken)));

        Assert.Equal(8, infos.Select(i => i.Plan.HostAddress).Distinct().Count());
        using var tables = JsonDocument.Parse(await Sh.InNetnsAsync(world.HostNs, "nft", "-j", "list", "tables"));
        Assert.Single(tables.RootElement.GetProperty("nftables").EnumerateArray(),
            e => e.TryGetProperty("table", out var t) && t.GetProperty("name").GetString() == "vmsan");
        Assert.Equal(1, await RuleCountAsync(world.HostNs, "postrouting"));
        Assert.Equal(2, await RuleCountAsync(world.HostNs, "forward"));
        foreach (var info in infos)
            await AssertTcpReachableAsync(world.HostNs, info.NetnsName, info.Plan.NamespaceAddress);

        await Task.WhenAll(vmIds.Select(id => manager.TeardownAsync(id, TestContext.Current.CancellationToken)));

        Assert.All(infos, i => Assert.False(NetnsWorld.NetnsExists(i.NetnsName)));
        Assert.DoesNotContain("vsn-", await Sh.RunAsync("ip", "-n", world.HostNs, "-o", "link", "show"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Networks_of_vms_that_are_not_live_are_reported_as_leaked()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var manager = world.Manager();
        var live = world.NewVmId();
        var dead = world.NewVmId();
        await manager.SetupAsync(live, 10, TestContext.Current.CancellationToken);
        await manager.SetupAsync(dead, 11, TestContext.Current.CancellationToken);

        var leaked = await manager.ListLeakedAsync(new HashSet<string> { live }, TestContext.Current.CancellationToken);

        // Other vmsan namespaces on this machine may show up too: look at ours only.
        var ours = leaked.Where(l => l.VmId == live || l.VmId == dead).OrderBy(l => l.Kind).ToList();
        Assert.Equal(
            [
                new LeakedNetworkResource(LeakedNetworkKind.Namespace, VmNetworkPlan.NetnsNameOf(dead), dead),
                new LeakedNetworkResource(LeakedNetworkKind.HostLink, VmNetworkPlan.HostLinkOf(dead), dead),
            ],
            ours);
        foreach (var l in ours)
            await manager.TeardownAsync(l.VmId, TestContext.Current.CancellationToken);
        Assert.DoesNotContain((await manager.ListLeakedAsync(new HashSet<string>(), TestContext.Current.CancellationToken)), l => l.VmId == dead);
    }

    [Fact(Timeout = 120_000)]
    public async Task Ten_setups_and_teardowns_each_leave_exactly_what_they_should_in_bounded_time()
    {
        await using var world = await NetnsWorld.CreateAsync();
        var manager = world.Manager();
        var warm = world.NewVmId();
        await manager.SetupAsync(warm, 0, TestContext.Current.CancellationToken); // warm up (and create the host table)
        var setups = new List<double>();
        var teardowns = new List<double>();

        for (var i = 0; i < 10; i++)
        {
            var vmId = world.NewVmId();
            var sw = Stopwatch.StartNew();
            await manager.SetupAsync(vmId, 20 + i, TestContext.Current.CancellationToken);
            setups.Add(sw.Elapsed.TotalMilliseconds);
            Assert.True(NetnsWorld.NetnsExists(VmNetworkPlan.NetnsNameOf(vmId)));
            Assert.Equal(new[] { VmNetworkPlan.HostLinkOf(warm), VmNetworkPlan.HostLinkOf(vmId) }.Order(StringComparer.Ordinal),
                (await HostLinksAsync(world)).Order(StringComparer.Ordinal));
            sw.Restart();
            await manager.TeardownAsync(vmId, TestContext.Current.CancellationToken);
            teardowns.Add(sw.Elapsed.TotalMilliseconds);
            Assert.False(NetnsWorld.NetnsExists(VmNetworkPlan.NetnsNameOf(vmId)));
            Assert.Equal([VmNetworkPlan.HostLinkOf(warm)], await HostLinksAsync(world));
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"SetupAsync median {Median(setups):F1} ms (min {setups.Min():F1}, max {setups.Max():F1}); " +
            $"TeardownAsync median {Median(teardowns):F1} ms (min {teardowns.Min():F1}, max {teardowns.Max():F1})");
        // Bounds for a loaded 2-core machine (unloaded: tens of ms); they catch a setup that waits on a timeout.
        Assert.True(Median(setups) < 5_000 && setups.Max() < 20_000, $"setups took {string.Join(", ", setups.Select(s => s.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))} ms");
        Assert.True(Median(teardowns) < 5_000 && teardowns.Max() < 20_000, $"teardowns took {string.Join(", ", teardowns.Select(s => s.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))} ms");
    }

    /// <summary>The vsn- links in the world's host namespace, by name.</summary>
    private static async Task<string[]> HostLinksAsync(NetnsWorld world) =>
        (await Sh.RunAsync("ip", "-n", world.HostNs, "-o", "link", "show")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1].TrimEnd(':').Split('@')[0])
            .Where(n => n.StartsWith("vsn-", StringComparison.Ordinal))
            .ToArray();

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>A TCP round trip from <paramref name="fromNs"/> to a server on <paramref name="address"/> in <paramref name="serverNs"/>.</summary>
    private static async Task AssertTcpReachableAsync(string fromNs, string serverNs, IPAddress address)
    {
        using var server = await NetnsWorld.StartEchoServerAsync(serverNs, address);
        using var client = await NamespaceSocket.ConnectAsync(fromNs, server.EndPoint, TestContext.Current.CancellationToken);
        Assert.Equal("over the veth", await EchoAsync(client, "over the veth"));
    }

    internal static async Task<string> EchoAsync(Socket socket, string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        await socket.SendAsync(bytes, TestContext.Current.CancellationToken);
        var buffer = new byte[bytes.Length];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), TestContext.Current.CancellationToken);
            if (n == 0)
                break;
            read += n;
        }
        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    private static async Task<string[]> AddressesAsync(string netns, string dev)
    {
        var output = await Sh.RunAsync("ip", "-n", netns, "-4", "-o", "address", "show", "dev", dev);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "inet").ElementAt(1))
            .ToArray();
    }

    private static async Task<int> RuleCountAsync(string netns, string chain, string family = "ip")
    {
        using var doc = JsonDocument.Parse(await Sh.InNetnsAsync(netns, "nft", "-j", "list", "chain", family, "vmsan", chain));
        return doc.RootElement.GetProperty("nftables").EnumerateArray().Count(e => e.TryGetProperty("rule", out _));
    }

    /// <summary>Runs commands for real, except the one <paramref name="fails"/> picks, which fails like a broken tool.</summary>
    private sealed class FailingRunner(Func<string, bool> fails) : ICommandRunner
    {
        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> args, string? stdin = null, CancellationToken ct = default) =>
            fails(string.Join(' ', args) + " " + stdin)
                ? Task.FromResult(new CommandResult(2, "", "injected failure"))
                : CommandRunner.Instance.RunAsync(file, args, stdin, ct);
    }
}
