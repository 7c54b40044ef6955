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
    private const int UplinkHold = 7005;
    private const int GuestServer = 8000;
    private static readonly int PublishedAll = 20000 + Random.Shared.Next(20000);
    private static readonly int PublishedLoopback = PublishedAll + 1;

    /// <summary>In the uplink's 198.18.0.0/24 but denied by the custom policy's --denied-cidr.</summary>
    private const string UplinkDeniedInsideAllowed = "198.18.0.7";

    /// <summary>Addresses that exist in the uplink ("the internet") although the set must refuse them.</summary>
    private static readonly string[] UplinkDeniedAddresses = ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", UplinkDeniedInsideAllowed];

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
            // The sibling also carries the published-port story: deny-all egress, one port on every
            // host address and one on loopback only.
            Sibling = await World.CreateVm("--network-policy", "deny-all",
                "-p", $"{PublishedAll}:{GuestServer}", "--publish-port", $"127.0.0.1:{PublishedLoopback}:{GuestServer}/tcp");
            var up = IPAddress.Parse(VmsanWorld.UplinkAddress);
            _sinks.Add(await GuestProbe.TcpSinkAsync(World.UplinkNs, IPAddress.Any, UplinkTcp));
            _sinks.Add(await GuestProbe.UdpEchoAsync(World.UplinkNs, up, UplinkUdp));
            _sinks.Add(await GuestProbe.TcpHoldAsync(World.UplinkNs, up, UplinkHold));
            foreach (var port in (int[])[53, 853])
                _sinks.Add(await GuestProbe.TcpSinkAsync(World.UplinkNs, up, port));
            foreach (var port in (int[])[53, 443])
                _sinks.Add(await GuestProbe.UdpEchoAsync(World.UplinkNs, up, port));
            _sinks.Add(await GuestProbe.TcpSinkAsync(World.HostNs, IPAddress.Any, HostTcp));
            foreach (var id in (string[])[Prober, Sibling])
                _sinks.Add(await GuestProbe.TcpSinkAsync(VmNetns(id), IPAddress.Any, NsTcp));
            await GuestProbe.InstallAsync(World, Prober);
            await GuestProbe.InstallAsync(World, Sibling);
            var serve = await World.Vmsan("exec", "-d", "-u", "root", Sibling, "--", "/tmp/probe", "serve", GuestServer.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(serve.ExitCode == 0, serve.ToString());
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

    /// <summary>Custom policy 1 (applied live): the uplink's /24 and, explicitly, the metadata address; one address denied inside.</summary>
    private static readonly string[] Custom1 =
        ["--network-policy", "custom", "--add-allowed-cidr", "198.18.0.0/24", "--add-allowed-cidr", "169.254.169.254/32",
         "--add-denied-cidr", UplinkDeniedInsideAllowed + "/32", "--add-denied-cidr", VmsanWorld.HostAddress];

    /// <summary>
    /// Every probe with its expected outcome per policy: allow-all, deny-all, custom 1. "open" means
    /// the target answered; "refused" that connect/send failed at once (reset or ICMP error, under
    /// a second); a target that would answer exists for every row, so "refused" is the policy's.
    /// </summary>
    private List<(string Name, string Proto, string Address, int Port, string AllowAll, string DenyAll, string Custom)> Probes() =>
    [
        ("uplink-tcp", "tcp", VmsanWorld.UplinkAddress, UplinkTcp, Open, Refused, Open),
        ("uplink-udp", "udp", VmsanWorld.UplinkAddress, UplinkUdp, Open, Refused, Refused),
        ("uplink-icmp", "icmp", VmsanWorld.UplinkAddress, 0, Open, Refused, Open),
        // Other resolvers, DoT and QUIC: open under allow-all only (custom allows the uplink's /24, yet
        // DNS and DoT stay refused there: the VM's filter is its only resolver).
        ("uplink-dns-udp", "udp", VmsanWorld.UplinkAddress, 53, Open, Refused, Refused),
        ("uplink-dns-tcp", "tcp", VmsanWorld.UplinkAddress, 53, Open, Refused, Refused),
        ("uplink-dot", "tcp", VmsanWorld.UplinkAddress, 853, Open, Refused, Refused),
        ("uplink-quic", "udp", VmsanWorld.UplinkAddress, 443, Open, Refused, Refused),
        ("denied-inside-allowed", "tcp", UplinkDeniedInsideAllowed, UplinkTcp, Open, Refused, Refused),
        ("metadata-tcp", "tcp", "169.254.169.254", UplinkTcp, Refused, Refused, Open),
        ("metadata-udp", "udp", "169.254.169.254", 53, Refused, Refused, Refused),
        ("metadata-icmp", "icmp", "169.254.169.254", 0, Refused, Refused, Open),
        ("private-10", "tcp", "10.0.0.1", UplinkTcp, Refused, Refused, Refused),
        ("private-172.16", "tcp", "172.16.0.1", UplinkTcp, Refused, Refused, Refused),
        ("private-192.168", "tcp", "192.168.1.1", UplinkTcp, Refused, Refused, Refused),
        ("cgnat-100.64", "tcp", "100.64.0.1", UplinkTcp, Refused, Refused, Refused),
        ("host-address", "tcp", VmsanWorld.HostAddress, HostTcp, Refused, Refused, Refused),
        ("host-address-icmp", "icmp", VmsanWorld.HostAddress, 0, Refused, Refused, Refused),
        ("own-host-veth", "tcp", vms.Net(vms.Prober, "hostIp"), HostTcp, Refused, Refused, Refused),
        ("own-namespace-veth", "tcp", vms.Net(vms.Prober, "nsIp"), NsTcp, Refused, Refused, Refused),
        ("own-gateway", "tcp", "172.30.0.1", NsTcp, Refused, Refused, Refused),
        ("own-gateway-icmp", "icmp", "172.30.0.1", 0, Refused, Refused, Refused),
        ("sibling-host-veth", "tcp", vms.Net(vms.Sibling, "hostIp"), HostTcp, Refused, Refused, Refused),
        ("sibling-namespace-veth", "tcp", vms.Net(vms.Sibling, "nsIp"), NsTcp, Refused, Refused, Refused),
        ("sibling-published-port", "tcp", VmsanWorld.HostAddress, PublishedAll, Refused, Refused, Refused),
        // No ICMP error ever answers a multicast destination (RFC 1122), so "not delivered" is the
        // best there is: the guest's own multicast is rejected on input and never forwarded.
        ("multicast-udp", "udp", "224.0.0.251", 5353, NoAnswer, NoAnswer, NoAnswer),
        ("ipv6-global", "tcp", "2001:db8::1", 80, Refused, Refused, Refused),
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
    public async Task A_guest_that_gives_itself_an_ipv6_route_still_gets_nowhere_and_fails_at_once()
    {
        // Guests get no IPv6 route; a hostile root guest adds one via its namespace's link-local
        // address (over rtnetlink: the base image has no iproute2).
        var addr = await Sh.RunAsync("nsenter", ["--net=" + vms.VmNetns(vms.Prober), "ip", "-6", "-o", "address", "show", "dev", "tap0", "scope", "link"]);
        var gw = System.Text.RegularExpressions.Regex.Match(addr.Stdout, @"inet6 (fe80::[0-9a-f:]+)/").Groups[1].Value;
        Assert.True(gw.Length > 0, "tap0 has no link-local address: " + addr);
        var route = await W.Vmsan("exec", "-u", "root", vms.Prober, "--", "/tmp/probe", "route6", gw, "eth0");
        Assert.True(route.ExitCode == 0, route.ToString());
        var before = await Counters(vms.Prober);

        var results = await GuestProbe.RunAsync(W, vms.Prober,
        [
            ("ipv6-global-tcp", "tcp", "2001:db8::1", 80),
            ("ipv6-global-udp", "udp", "2001:db8::1", 53),
        ]);
        // Back to the state every guest boots in (the later tables expect "no route" for IPv6).
        var unroute = await W.Vmsan("exec", "-u", "root", vms.Prober, "--", "/tmp/probe", "route6", gw, "eth0", "del");
        Assert.True(unroute.ExitCode == 0, unroute.ToString());

        // The namespace's prohibit route answers admin-prohibited at once (UDP too), counted and logged.
        AssertTable([("ipv6-global-tcp", Refused), ("ipv6-global-udp", Refused)], results);
        Assert.All(results.Values, r => Assert.Equal("Permission_denied", r.Detail));
        var after = await Counters(vms.Prober);
        Assert.True(after["refused_ipv6"] >= before["refused_ipv6"] + 2, string.Join(", ", after));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!(await W.Vmsan("logs", vms.Prober, "--network")).Stdout.Contains("udp dst=[2001:db8::1]:53 rule=refused_ipv6", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the IPv6 refusal is not in the network log");
            await Task.Delay(500, TestContext.Current.CancellationToken);
        }
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

    [Fact]
    public async Task A_live_deny_all_refuses_new_connections_at_once_and_cuts_an_established_one()
    {
        // A connection held open by the guest, writing every 200 ms until a write fails.
        var hold = await W.Vmsan("exec", "-d", "-u", "root", vms.Prober, "--", "bash", "-c",
            $"trap '' PIPE; exec 3<>/dev/tcp/{VmsanWorld.UplinkAddress}/{UplinkHold} || {{ echo open-failed > /tmp/conn.log; exit; }}; " +
            "i=0; while echo ping >&3; do i=$((i+1)); echo ok $i >> /tmp/conn.log; sleep 0.2; done; echo cut >> /tmp/conn.log");
        Assert.True(hold.ExitCode == 0, hold.ToString());
        await WaitForGuestLog(vms.Prober, "ok 3");

        var change = await W.VmsanJson("network", vms.Prober, "--network-policy", "deny-all");

        Assert.Equal("deny-all", change.GetProperty("policy").GetString());
        Assert.True(change.GetProperty("applied").GetBoolean());
        await WaitForGuestLog(vms.Prober, "cut");
        var probes = Probes();
        var results = await GuestProbe.RunAsync(W, vms.Prober, probes.Select(p => (p.Name, p.Proto, p.Address, p.Port)));
        AssertTable(probes.Select(p => (p.Name, p.DenyAll)), results);
        var shown = await W.VmsanJson("network", vms.Prober);
        Assert.True(shown.GetProperty("refusals").GetProperty("refused_policy").GetInt64() > 0, shown.ToString());
        Assert.True(shown.GetProperty("refusals").GetProperty("refused_dns").GetInt64() > 0, shown.ToString());
        Assert.Equal("deny-all", (await W.VmsanJson("get", vms.Prober)).GetProperty("networkPolicy").GetString());
    }

    [Fact]
    public async Task Refused_connections_show_in_the_network_log_with_their_rule_and_agree_with_the_counters()
    {
        // The allow-all and deny-all matrices above refused these from inside the guest.
        (string Dst, string Type, string Rule)[] wanted =
        [
            ($"{VmsanWorld.UplinkAddress}:{UplinkTcp}", "tcp", "refused_policy"),
            ($"{VmsanWorld.UplinkAddress}:{UplinkUdp}", "udp", "refused_udp"),
            ($"{VmsanWorld.UplinkAddress}:53", "udp", "refused_dns"),
            ($"{VmsanWorld.UplinkAddress}:853", "tcp", "refused_dns"),
            ($"169.254.169.254:{UplinkTcp}", "tcp", "refused_always_denied"),
            ($"{VmsanWorld.HostAddress}:{HostTcp}", "tcp", "refused_always_denied"),
            ($"172.30.0.1:{NsTcp}", "tcp", "refused_namespace"),
        ];
        List<JsonElement> refused = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var log = await W.VmsanJson("logs", vms.Prober, "--network");
            refused = [.. log.GetProperty("network").EnumerateArray().Where(e => e.GetProperty("kind").GetString() == "refused")];
            var missing = wanted.Where(w => !refused.Any(e => Str(e, "dst") == w.Dst && Str(e, "type") == w.Type && Str(e, "rule") == w.Rule)).ToList();
            if (missing.Count == 0)
                break;
            Assert.True(DateTime.UtcNow < deadline, "not in the network log: " + string.Join(", ", missing) + "\nlog: " + string.Join("\n", refused));
            await Task.Delay(500, TestContext.Current.CancellationToken);
        }
        Assert.All(refused, e => Assert.Equal("refused", Str(e, "action")));
        // ICMP refusals name their type.
        Assert.Contains(refused, e => Str(e, "dst") == "169.254.169.254" && Str(e, "type") == "icmp type 8 code 0");

        // Every logged refusal was counted by the rule it names (the log is rate-limited, the counters are not).
        var shown = (await W.VmsanJson("network", vms.Prober)).GetProperty("refusals");
        foreach (var g in refused.GroupBy(e => Str(e, "rule")))
        {
            Assert.True(shown.TryGetProperty(g.Key!, out var n), $"rule {g.Key} has no counter in `vmsan network`: {shown}");
            Assert.True(n.GetInt64() >= g.Count(), $"{g.Key}: {g.Count()} logged but counted {n.GetInt64()}");
        }

        // The human form: time, what, destination, protocol, rule.
        var text = await W.Vmsan("logs", vms.Prober, "--network");
        var dst = System.Text.RegularExpressions.Regex.Escape($"{VmsanWorld.UplinkAddress}:{UplinkTcp}");
        Assert.Matches($@"(?m)^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} refused refused tcp dst={dst} rule=refused_policy$", text.Stdout);
    }

    /// <summary><paramref name="flag"/> with <paramref name="n"/> distinct /32s that do not merge into ranges.</summary>
    private static string[] Many(string flag, int n) =>
        [.. Enumerable.Range(0, n).SelectMany(i => new[] { flag, $"203.0.{i / 128}.{i % 128 * 2}/32" })];

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() : null;

    [Fact]
    public async Task A_custom_policy_opens_allowed_cidrs_for_tcp_and_icmp_only_and_a_denied_cidr_inside_wins()
    {
        var change = await W.Vmsan(["network", vms.Prober, .. Custom1]);
        Assert.True(change.ExitCode == 0, change.ToString());

        var probes = Probes();
        var results = await GuestProbe.RunAsync(W, vms.Prober, probes.Select(p => (p.Name, p.Proto, p.Address, p.Port)));

        AssertTable(probes.Select(p => (p.Name, p.Custom)), results);
        Assert.True((await Counters(vms.Prober))["refused_denied_cidr"] > 0);
    }

    [Fact]
    public async Task Bad_policy_input_is_refused_naming_the_entry_and_changes_nothing()
    {
        var before = W.State(vms.Prober)!.Value.GetProperty("network").ToString();
        foreach (var (args, entry) in ((string[], string)[])
                 [
                     (["network", vms.Prober, "--add-allowed-cidr", "198.51.100.7/24"], "198.51.100.7/24"),
                     (["network", vms.Prober, "--add-allowed-domain", "foo.*.example.com"], "foo.*.example.com"),
                     (["network", vms.Prober, "--add-allowed-domain", "203.0.113.9"], "203.0.113.9"),
                     (["network", vms.Prober, "--remove-allowed-cidr", "203.0.113.0/24"], "203.0.113.0/24"),
                     (["network", vms.Prober, "--network-policy", "deny-all", "--add-allowed-cidr", "203.0.113.0/24"], "203.0.113.0/24"),
                     (["create", "--network-policy", "allow-all", "--denied-cidr", "203.0.113.0/24"], "203.0.113.0/24"),
                     (["create", "-p", "8080:80", "-p", "8080:81"], "8080"),
                     (["create", "-p", "8080:80/sctp"], "8080:80/sctp"),
                     (["create", "--allowed-cidr", "300.1.2.3/8"], "300.1.2.3/8"),
                     (["network", vms.Prober, "--add-allowed-domain", "bad..example.com"], "bad..example.com"),
                     (["create", "--allowed-domain", "exa_mple com"], "exa_mple com"),
                     // 1,025 entries: one over the limit, live and at create.
                     (["network", vms.Prober, "--network-policy", "custom", .. Many("--add-allowed-cidr", 1025)], "at most 1024"),
                     (["create", .. Many("--allowed-cidr", 1024), "--allowed-domain", "one.example.com"], "has 1025 entries"),
                 ])
        {
            var r = await W.Vmsan([.. args, "--json"]);
            Assert.True(r.ExitCode != 0, $"{string.Join(' ', args)}: {r}");
            using var doc = JsonDocument.Parse(r.Stdout);
            Assert.Equal("INVALID_ARGUMENT", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains(entry, doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        // A published port already taken (by the sibling, and by a foreign socket in the host
        // namespace, which binds with SO_REUSEADDR as most servers do).
        var taken = await W.Vmsan("create", "-p", $"{PublishedAll}:80", "--json");
        Assert.Contains("PORT_IN_USE", taken.Stdout, StringComparison.Ordinal);
        using (await GuestProbe.TcpSinkAsync(W.HostNs, IPAddress.Any, PublishedAll + 2))
        {
            var held = await W.Vmsan("create", "-p", $"{PublishedAll + 2}:80", "--json");
            Assert.Contains("PORT_IN_USE", held.Stdout, StringComparison.Ordinal);
            Assert.Contains($"{PublishedAll + 2}:80", held.Stdout, StringComparison.Ordinal);
        }
        using (await GuestProbe.UdpEchoAsync(W.HostNs, IPAddress.Parse(VmsanWorld.HostAddress), PublishedAll + 3))
        {
            var held = await W.Vmsan("create", "-p", $"{PublishedAll + 3}:53/udp", "--json");
            Assert.Contains("PORT_IN_USE", held.Stdout, StringComparison.Ordinal);
        }
        Assert.Equal(before, W.State(vms.Prober)!.Value.GetProperty("network").ToString());
        Assert.Equal(2, (await W.VmsanJson("list")).GetArrayLength());
    }

    [Fact]
    public async Task A_published_port_answers_from_the_host_under_deny_all_on_loopback_and_other_addresses()
    {
        Assert.Equal("deny-all", (await W.VmsanJson("get", vms.Sibling)).GetProperty("networkPolicy").GetString());
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, "127.0.0.1", PublishedAll));
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, VmsanWorld.HostAddress, PublishedAll));
        // From another network: the uplink reaches the host's address.
        Assert.Equal("hello-from-guest", await ReadBanner(W.UplinkNs, VmsanWorld.HostAddress, PublishedAll));
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, "127.0.0.1", PublishedLoopback));
        Assert.Null(await ReadBanner(W.UplinkNs, VmsanWorld.HostAddress, PublishedLoopback));
        var list = await W.Vmsan("list");
        Assert.Contains($"{PublishedAll}:{GuestServer}/tcp", list.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_policy_and_published_ports_survive_stop_and_start()
    {
        foreach (var id in (string[])[vms.Prober, vms.Sibling])
        {
            Assert.Equal(0, (await W.Vmsan("stop", id)).ExitCode);
            var stopped = await W.VmsanJson("network", id);
            Assert.False(stopped.GetProperty("applied").GetBoolean());
            Assert.Equal(0, (await W.Vmsan("start", id)).ExitCode);
            await GuestProbe.InstallAsync(W, id); // /tmp is a tmpfs
        }
        Assert.Equal("custom", (await W.VmsanJson("network", vms.Prober)).GetProperty("policy").GetString());
        var results = await GuestProbe.RunAsync(W, vms.Prober,
            [("uplink-tcp", "tcp", VmsanWorld.UplinkAddress, UplinkTcp), ("denied-inside-allowed", "tcp", UplinkDeniedInsideAllowed, UplinkTcp),
             ("uplink-udp", "udp", VmsanWorld.UplinkAddress, UplinkUdp)]);
        AssertTable([("uplink-tcp", Open), ("denied-inside-allowed", Refused), ("uplink-udp", Refused)], results);
        var serve = await W.Vmsan("exec", "-d", "-u", "root", vms.Sibling, "--", "/tmp/probe", "serve", GuestServer.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(serve.ExitCode == 0, serve.ToString());
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, "127.0.0.1", PublishedAll, retryForSeconds: 10));
    }

    [Fact]
    public async Task Removing_a_vm_frees_its_published_ports()
    {
        Assert.Equal(0, (await W.Vmsan("rm", "-f", vms.Sibling)).ExitCode);

        // Bound the strict way (no SO_REUSEADDR/SO_REUSEPORT): fails while anything still holds them.
        foreach (var (address, port) in ((IPAddress, int)[])[(IPAddress.Any, PublishedAll), (IPAddress.Loopback, PublishedLoopback)])
        {
            using var s = await Vmsan.Network.NamespaceSocket.CreateAsync(W.HostNs, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp,
                TestContext.Current.CancellationToken);
            s.Bind(new IPEndPoint(address, port));
            s.Listen(1);
        }
        Assert.Null(await ReadBanner(W.HostNs, "127.0.0.1", PublishedAll));
    }

    private async Task WaitForGuestLog(string id, string line)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        string seen = "";
        while (DateTime.UtcNow < deadline)
        {
            seen = (await W.Vmsan("exec", id, "--", "cat", "/tmp/conn.log")).Stdout;
            if (seen.Split('\n').Any(l => l.Trim() == line))
                return;
            await Task.Delay(300);
        }
        Assert.Fail($"guest log never showed '{line}': {seen}");
    }

    /// <summary>The first line a TCP server at ADDR:PORT sends, seen from <paramref name="netns"/>; null when the connection fails.</summary>
    private static async Task<string?> ReadBanner(string netns, string address, int port, int retryForSeconds = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(retryForSeconds);
        while (true)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                using var s = await Vmsan.Network.NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(address), port), cts.Token);
                var buf = new byte[64];
                var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
                var text = System.Text.Encoding.ASCII.GetString(buf, 0, n).Trim();
                if (text.Length > 0 || DateTime.UtcNow >= deadline)
                    return text.Length > 0 ? text : null;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                if (DateTime.UtcNow >= deadline)
                    return null;
            }
            await Task.Delay(300);
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
