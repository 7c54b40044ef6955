using System.Net;
using CsCheck;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.Network.Policy;
using Vmsan.Network.Ports;
using Xunit;

namespace Vmsan.UnitTests.Network.Policy;

public sealed class NetworkPolicyTests
{
    private static readonly Gen<string> Label = Gen.Select(Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"].Array[1, 12], Gen.Bool)
        .Select((c, hyphen) => hyphen && c.Length > 2 ? new string(c[..1]) + "-" + new string(c[1..]) : new string(c));

    private static readonly Gen<string> Domain = Gen.Select(Label.Array[1, 4], Gen.Char["abcdefghijklmnopqrstuvwxyz"].Array[2, 6], Gen.Bool)
        .Select((labels, tld, wildcard) => (wildcard ? "*." : "") + string.Join('.', labels) + "." + new string(tld));

    private static readonly Gen<IPNetwork> Cidr4 = Gen.Select(Gen.UInt, Gen.Int[0, 32])
        .Select((v, p) => new IPNetwork(Mask(IpRanges.ToAddress(v, System.Net.Sockets.AddressFamily.InterNetwork), p), p));

    private static IPAddress Mask(IPAddress a, int prefix)
    {
        var b = a.GetAddressBytes();
        for (var i = 0; i < b.Length; i++)
            b[i] &= (byte)(0xff << (8 - Math.Clamp(prefix - (i * 8), 0, 8)));
        return new IPAddress(b);
    }

    private static VmsanException Invalid(Action a)
    {
        var ex = Assert.Throws<VmsanException>(a);
        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
        return ex;
    }

    [Fact]
    public void Valid_domains_normalize_to_lowercase_and_round_trip() =>
        Domain.Sample(d =>
        {
            var upper = d.ToUpperInvariant() + ".";
            var n = NetworkPolicy.NormalizeDomain(upper);
            Assert.Equal(d, n);
            Assert.Equal(n, NetworkPolicy.NormalizeDomain(n));
        });

    [Fact]
    public void Valid_cidrs_round_trip_through_their_text() =>
        Cidr4.Sample(c => Assert.Equal(c, NetworkPolicy.ParseCidr(c.ToString())));

    [Fact]
    public void A_cidr_with_host_bits_is_refused_naming_the_network() =>
        Gen.Select(Gen.UInt, Gen.Int[0, 31]).Sample((v, p) =>
        {
            var a = IpRanges.ToAddress(v, System.Net.Sockets.AddressFamily.InterNetwork);
            if (Mask(a, p).Equals(a))
                return;
            var ex = Invalid(() => NetworkPolicy.ParseCidr($"{a}/{p}"));
            Assert.Contains($"{a}/{p}", ex.Message);
        });

    [Fact]
    public void Arbitrary_text_either_parses_or_fails_with_invalid_argument_never_anything_else() =>
        Gen.String[Gen.Char["0123456789abcdef.:/*-[]% xX"], 0, 24].Sample(s =>
        {
            foreach (var parse in (Action[])[() => NetworkPolicy.ParseCidr(s), () => NetworkPolicy.NormalizeDomain(s), () => PortSpec.Parse(s)])
            {
                try
                {
                    parse();
                }
                catch (VmsanException ex)
                {
                    Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
                }
            }
        });

    [Theory]
    [InlineData("1.2.3.4", "an IP address")]
    [InlineData("::1", "an IP address")]
    [InlineData("foo.*.com", "wildcard")]
    [InlineData("*example.com", "wildcard")]
    [InlineData("**.example.com", "wildcard")]
    [InlineData("example.*", "wildcard")]
    [InlineData("com", "two labels")]
    [InlineData("-bad.example.com", "not a valid label")]
    [InlineData("a..b.com", "not a valid label")]
    [InlineData("exa mple.com", "not a valid label")]
    [InlineData("host.123", "numeric")]
    [InlineData("", "empty")]
    public void Bad_domains_are_refused_naming_the_entry(string domain, string why)
    {
        var ex = Invalid(() => NetworkPolicy.Create(null, [domain]));
        Assert.Contains(why, ex.Message);
        if (domain.Length > 0)
            Assert.Contains(domain, ex.Message);
    }

    [Theory]
    [InlineData("203.0.113.0/33")]
    [InlineData("203.0.113.7/24")]
    [InlineData("203.0.113/24")]
    [InlineData("01.2.3.4")]
    [InlineData("example.com")]
    [InlineData("1.2.3.4/")]
    [InlineData("fe80::1%eth0")]
    [InlineData("::ffff:1.2.3.4")]
    public void Bad_cidrs_are_refused_naming_the_entry(string cidr)
    {
        var ex = Invalid(() => NetworkPolicy.Create(null, allowedCidrs: [cidr]));
        Assert.Contains(cidr, ex.Message);
    }

    [Theory]
    [InlineData("allow-all")]
    [InlineData("deny-all")]
    public void Lists_with_allow_all_or_deny_all_are_refused(string mode)
    {
        var ex = Invalid(() => NetworkPolicy.Create(mode, deniedCidrs: ["203.0.113.0/24"]));
        Assert.Contains("203.0.113.0/24", ex.Message);
        Assert.Contains(mode, ex.Message);
    }

    [Fact]
    public void Any_list_implies_custom_and_no_list_is_allow_all()
    {
        Assert.Equal(NetworkPolicyMode.Custom, NetworkPolicy.Create(null, ["example.com"]).Mode);
        Assert.Equal(NetworkPolicyMode.AllowAll, NetworkPolicy.Create(null).Mode);
        Invalid(() => NetworkPolicy.Create("block-all"));
    }

    [Fact]
    public void More_than_1024_entries_are_refused_and_1024_pass()
    {
        var cidrs = Enumerable.Range(0, 1024).Select(i => $"198.51.{i / 256}.{i % 256}/32").ToList();
        Assert.Equal(1024, NetworkPolicy.Create("custom", allowedCidrs: cidrs).EntryCount);
        var ex = Invalid(() => NetworkPolicy.Create("custom", ["one.example.com"], cidrs));
        Assert.Contains("1025", ex.Message);
    }

    [Fact]
    public void Live_changes_add_remove_and_switch_modes()
    {
        var p = NetworkPolicy.DenyAll.Change(addDomains: ["A.example.com"], addAllowedCidrs: ["203.0.113.0/24"]);
        Assert.Equal(NetworkPolicyMode.Custom, p.Mode);
        Assert.Equal(["a.example.com"], p.AllowedDomains);
        p = p.Change(removeDomains: ["a.example.COM."], addDeniedCidrs: ["203.0.113.7"]);
        Assert.Empty(p.AllowedDomains);
        Assert.Equal("203.0.113.7/32", Assert.Single(p.DeniedCidrs).ToString());
        var ex = Invalid(() => p.Change(removeAllowedCidrs: ["198.51.100.0/24"]));
        Assert.Contains("198.51.100.0/24", ex.Message);
        Assert.Equal(0, p.Change(mode: "deny-all").EntryCount);
        Invalid(() => p.Change(mode: "allow-all", addDomains: ["x.example.com"]));
    }

    [Fact]
    public void The_policy_survives_the_state_file() =>
        Gen.Select(Domain.Array[0, 5], Cidr4.Array[0, 5], Cidr4.Array[0, 5]).Sample((d, a, n) =>
        {
            var p = NetworkPolicy.Create(d.Length + a.Length + n.Length == 0 ? "deny-all" : null, d, a.Select(c => c.ToString()), n.Select(c => c.ToString()));
            var net = new VmNetwork { Slot = 0, Netns = "n", HostVeth = "v", HostIp = "h", NsIp = "s", GuestIp = "g", GatewayIp = "w" }.WithPolicy(p);
            var back = NetworkPolicyState.PolicyOf(net);
            Assert.Equal(p.Mode, back.Mode);
            Assert.Equal(p.AllowedDomains, back.AllowedDomains);
            Assert.Equal(p.AllowedCidrs, back.AllowedCidrs);
            Assert.Equal(p.DeniedCidrs, back.DeniedCidrs);
        });

    [Theory]
    [InlineData("*.example.com", "a.example.com", true)]
    [InlineData("*.example.com", "A.B.EXAMPLE.COM.", true)]
    [InlineData("*.example.com", "example.com", false)]
    [InlineData("*.example.com", "badexample.com", false)]
    [InlineData("example.com", "EXAMPLE.com.", true)]
    [InlineData("example.com", "www.example.com", false)]
    public void Domains_match_case_insensitively_and_wildcards_exclude_the_apex(string pattern, string name, bool matches) =>
        Assert.Equal(matches, NetworkPolicy.DomainMatches(pattern, name));

    [Fact]
    public void Address_decisions_put_denied_before_allowed_and_allowed_before_always_denied()
    {
        var host = new[] { IPAddress.Parse("198.18.0.2") };
        var p = NetworkPolicy.Create("custom", allowedCidrs: ["203.0.113.0/24", "10.1.0.0/16"], deniedCidrs: ["203.0.113.7/32"]);
        Assert.True(p.AllowsAddress(IPAddress.Parse("203.0.113.8"), host));
        Assert.False(p.AllowsAddress(IPAddress.Parse("203.0.113.7"), host));
        Assert.True(p.AllowsAddress(IPAddress.Parse("10.1.2.3"), host));
        Assert.False(p.AllowsAddress(IPAddress.Parse("10.2.0.1"), host));
        Assert.False(NetworkPolicy.AllowAll.AllowsAddress(IPAddress.Parse("169.254.169.254"), host));
        Assert.False(NetworkPolicy.AllowAll.AllowsAddress(IPAddress.Parse("198.18.0.2"), host));
        Assert.True(NetworkPolicy.AllowAll.AllowsAddress(IPAddress.Parse("198.18.0.1"), host));
        Assert.False(NetworkPolicy.DenyAll.AllowsAddress(IPAddress.Parse("198.18.0.1"), host));
    }

    [Theory]
    [InlineData("8080:80", null, 8080, 80, "tcp")]
    [InlineData("127.0.0.1:3000:3000", "127.0.0.1", 3000, 3000, "tcp")]
    [InlineData("5353:53/udp", null, 5353, 53, "udp")]
    [InlineData("[::1]:8443:443/tcp", "::1", 8443, 443, "tcp")]
    public void Publish_specs_parse_docker_syntax(string spec, string? address, int host, int guest, string proto) =>
        Assert.Equal(new PublishedPort(address, host, guest, proto), PortSpec.Parse(spec));

    [Theory]
    [InlineData("80")]
    [InlineData("0:80")]
    [InlineData("70000:80")]
    [InlineData("8080:80/sctp")]
    [InlineData("localhost:8080:80")]
    [InlineData("1.2.3:8080:80")]
    public void Bad_publish_specs_are_refused_naming_the_value(string spec)
    {
        var ex = Invalid(() => PortSpec.Parse(spec));
        Assert.Contains(spec, ex.Message);
    }

    [Fact]
    public void A_host_port_given_twice_is_refused()
    {
        Invalid(() => PortSpec.CheckDistinct([PortSpec.Parse("8080:80"), PortSpec.Parse("127.0.0.1:8080:81")]));
        PortSpec.CheckDistinct([PortSpec.Parse("8080:80"), PortSpec.Parse("8080:80/udp")]);
    }

    [Fact]
    public void A_port_held_by_another_socket_is_port_in_use()
    {
        using var held = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        held.Start();
        var port = ((IPEndPoint)held.LocalEndpoint).Port;
        var ex = Assert.Throws<VmsanException>(() => PortSpec.CheckFree(new PublishedPort(null, port, 80, "tcp")));
        Assert.Equal(ErrorCode.PortInUse, ex.Code);
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("udp")]
    public void A_wildcard_port_held_by_a_foreign_socket_with_reuse_address_is_port_in_use(string proto)
    {
        // How most servers (and .NET's own TcpListener users) bind: SO_REUSEADDR, which .NET turns
        // into SO_REUSEADDR + SO_REUSEPORT. A probe doing the same would bind beside it.
        var tcp = proto == "tcp";
        using var held = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            tcp ? System.Net.Sockets.SocketType.Stream : System.Net.Sockets.SocketType.Dgram,
            tcp ? System.Net.Sockets.ProtocolType.Tcp : System.Net.Sockets.ProtocolType.Udp);
        held.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
        held.Bind(new IPEndPoint(IPAddress.Any, 0));
        if (tcp)
            held.Listen(8);
        var port = ((IPEndPoint)held.LocalEndPoint!).Port;
        var spec = PortSpec.Parse($"{port}:80/{proto}");
        var ex = Assert.Throws<VmsanException>(() => PortSpec.CheckFree(spec));
        Assert.Equal(ErrorCode.PortInUse, ex.Code);
        Assert.Contains(spec.ToString(), ex.Message, StringComparison.Ordinal);
        // On one address only, too.
        var ex2 = Assert.Throws<VmsanException>(() => PortSpec.CheckFree(PortSpec.Parse($"127.0.0.1:{port}:80/{proto}")));
        Assert.Equal(ErrorCode.PortInUse, ex2.Code);
    }

    [Fact]
    public void A_free_port_passes_the_probe_and_stays_free()
    {
        using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var spec = new PublishedPort("127.0.0.1", port, 80, "tcp");
        PortSpec.CheckFree(spec);
        PortSpec.CheckFree(spec); // the first probe let go of it
    }

    [Fact]
    public void Merged_ranges_are_disjoint_and_cover_every_input() =>
        Cidr4.Array[1, 12].Sample(nets =>
        {
            var merged = IpRanges.Merge(nets, System.Net.Sockets.AddressFamily.InterNetwork);
            for (var i = 1; i < merged.Count; i++)
                Assert.True(merged[i].First > merged[i - 1].Last + 1);
            foreach (var n in nets)
            {
                var first = IpRanges.ToNumber(n.BaseAddress);
                Assert.Contains(merged, r => r.First <= first && first <= r.Last);
            }
        });
}
