using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// Issue 7's enforcement from inside a hostile guest: two real VMs (a prober and a sibling), every
/// target given something that would answer (sinks in the uplink, the host namespace and both VM
/// namespaces; the metadata and private addresses exist in the uplink), so a refusal can only be
/// the policy's. The expected outcome of every probe is written below, per policy.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class NetworkPolicyTests(NetworkPolicyTests.Vms vms) : IClassFixture<NetworkPolicyTests.Vms>
{
    private const int UplinkTcp = 7001;
    private const int UplinkUdp = 7002;
    private const int HostTcp = 7003;
    private const int NsTcp = 7004;

    /// <summary>Addresses that exist in the uplink ("the internet") although the set must refuse them.</summary>
    private static readonly string[] UplinkDeniedAddresses = ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1"];

    public sealed class Vms : IAsyncLifetime
    {
        private readonly List<Socket> _sinks = [];

        public VmsanWorld World { get; } = new();
        public string Prober { get; private set; } = "";
        public string Sibling { get; private set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            await Sh.Check(string.Join('\n', UplinkDeniedAddresses.Select(a => $"ip -n {World.UplinkNs} address add {a}/32 dev lo")));
            Prober = await World.CreateVm();
            Sibling = await World.CreateVm();
            var up = IPAddress.Parse(VmsanWorld.UplinkAddress);
            _sinks.Add(await GuestProbe.TcpSinkAsync(World.UplinkNs, IPAddress.Any, UplinkTcp));
            _sinks.Add(await GuestProbe.UdpEchoAsync(World.UplinkNs, up, UplinkUdp));
            _sinks.Add(await GuestProbe.TcpSinkAsync(World.HostNs, IPAddress.Any, HostTcp));
            foreach (var id in (string[])[Prober, Sibling])
                _sinks.Add(await GuestProbe.TcpSinkAsync(VmNetns(id), IPAddress.Any, NsTcp));
            await GuestProbe.InstallAsync(World, Prober);
        }

        public string VmNetns(string id) => $"/proc/{World.State(id)!.Value.GetProperty("vmm").GetProperty("pid").GetInt32()}/ns/net";

        public string Net(string id, string field) => World.State(id)!.Value.GetProperty("network").GetProperty(field).GetString()!;

        public async ValueTask DisposeAsync()
        {
            foreach (var s in _sinks)
                s.Dispose();
            await World.DisposeAsync();
        }
    }

    private VmsanWorld W => vms.World;

    private const string Open = "open";
    private const string Refused = "refused";
    private const string NoAnswer = "timeout";

    /// <summary>The probes: name, protocol, address, port, expected under allow-all.</summary>
    private List<(string Name, string Proto, string Address, int Port, string AllowAll)> Probes() =>
    [
        ("uplink-tcp", "tcp", VmsanWorld.UplinkAddress, UplinkTcp, Open),
        ("uplink-udp", "udp", VmsanWorld.UplinkAddress, UplinkUdp, Open),
        ("uplink-icmp", "icmp", VmsanWorld.UplinkAddress, 0, Open),
        ("metadata-tcp", "tcp", "169.254.169.254", UplinkTcp, Refused),
        ("metadata-udp", "udp", "169.254.169.254", 53, Refused),
        ("metadata-icmp", "icmp", "169.254.169.254", 0, Refused),
        ("private-10", "tcp", "10.0.0.1", UplinkTcp, Refused),
        ("private-172.16", "tcp", "172.16.0.1", UplinkTcp, Refused),
        ("private-192.168", "tcp", "192.168.1.1", UplinkTcp, Refused),
        ("cgnat-100.64", "tcp", "100.64.0.1", UplinkTcp, Refused),
        ("host-address", "tcp", VmsanWorld.HostAddress, HostTcp, Refused),
        ("host-address-icmp", "icmp", VmsanWorld.HostAddress, 0, Refused),
        ("own-host-veth", "tcp", vms.Net(vms.Prober, "hostIp"), HostTcp, Refused),
        ("own-namespace-veth", "tcp", vms.Net(vms.Prober, "nsIp"), NsTcp, Refused),
        ("own-gateway", "tcp", "172.30.0.1", NsTcp, Refused),
        ("own-gateway-icmp", "icmp", "172.30.0.1", 0, Refused),
        ("sibling-host-veth", "tcp", vms.Net(vms.Sibling, "hostIp"), HostTcp, Refused),
        ("sibling-namespace-veth", "tcp", vms.Net(vms.Sibling, "nsIp"), NsTcp, Refused),
        // No ICMP error ever answers a multicast destination (RFC 1122), so "not delivered" is the
        // best there is: the guest's own multicast is rejected on input and never forwarded.
        ("multicast-udp", "udp", "224.0.0.251", 5353, NoAnswer),
        ("ipv6-global", "tcp", "2001:db8::1", 80, Refused),
    ];

    [Fact]
    public async Task Under_allow_all_the_guest_reaches_the_uplink_but_nothing_in_the_always_denied_set()
    {
        var probes = Probes();
        var results = await GuestProbe.RunAsync(W, vms.Prober, probes.Select(p => (p.Name, p.Proto, p.Address, p.Port)));

        AssertTable(probes.Select(p => (p.Name, p.AllowAll)), results);
        var counters = await Counters(vms.Prober);
        Assert.True(counters["refused_always_denied"] > 0, string.Join(", ", counters));
        Assert.True(counters["refused_namespace"] > 0, string.Join(", ", counters));
    }

    [Fact]
    public async Task The_host_still_reaches_the_agent_of_both_vms()
    {
        foreach (var id in (string[])[vms.Prober, vms.Sibling])
        {
            var r = await W.Vmsan("exec", id, "--", "true");
            Assert.True(r.ExitCode == 0, r.ToString());
        }
    }

    private static void AssertTable(IEnumerable<(string Name, string Expected)> expected, Dictionary<string, ProbeResult> results)
    {
        var wrong = new List<string>();
        foreach (var (name, want) in expected)
        {
            if (!results.TryGetValue(name, out var got))
                wrong.Add($"{name}: no result");
            else if (got.Result != want)
                wrong.Add($"{name}: expected {want}, got {got.Result} ({got.Detail}, {got.Ms} ms)");
            else if (want == Refused && got.Ms >= 1000)
                wrong.Add($"{name}: refused, but only after {got.Ms} ms");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong) + "\nall: " + string.Join("; ", results.Values));
    }

    private async Task<Dictionary<string, long>> Counters(string id)
    {
        var r = await Sh.RunAsync("nsenter", ["--net=" + vms.VmNetns(id), "nft", "-j", "list", "counters", "table", "inet", "vmsan"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("nftables").EnumerateArray()
            .Where(e => e.TryGetProperty("counter", out _))
            .Select(e => e.GetProperty("counter"))
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("packets").GetInt64());
    }
}
