using System.Net;
using Vmsan.Network;
using Xunit;

namespace Vmsan.UnitTests.Network;

public sealed class HostResolverTests
{
    [Fact]
    public void The_first_non_loopback_ipv4_nameserver_is_chosen()
    {
        string[] lines =
        [
            "# generated",
            "search example.test",
            "nameserver 127.0.0.53",
            "nameserver ::1",
            "nameserver 2001:db8::1",
            "  nameserver\t192.0.2.53  # office",
            "nameserver 192.0.2.54",
        ];

        Assert.Equal(IPAddress.Parse("192.0.2.53"), HostResolver.Parse(lines));
    }

    [Fact]
    public void Only_loopback_resolvers_give_none()
    {
        Assert.Null(HostResolver.Parse(["nameserver 127.0.0.1", "; nameserver 192.0.2.1", "nameservers 192.0.2.2"]));
    }

    [Fact]
    public void A_missing_file_gives_none()
    {
        Assert.Null(HostResolver.FirstGuestReachable("/nonexistent/vmsan/resolv.conf"));
    }

    [Fact]
    public void The_file_is_read_from_disk()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vmsan-resolv-{Guid.NewGuid():N}.conf");
        try
        {
            File.WriteAllText(path, "nameserver 127.0.0.53\nnameserver 198.51.100.7\n");

            Assert.Equal(IPAddress.Parse("198.51.100.7"), HostResolver.FirstGuestReachable(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

public sealed class UpstreamResolverTests
{
    [Fact]
    public void The_dns_filter_forwards_to_the_first_nameserver_even_a_loopback_one()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vmsan-resolv-{Guid.NewGuid():N}.conf");
        File.WriteAllLines(path, ["# systemd-resolved", "nameserver 127.0.0.53", "nameserver 192.0.2.1"]);
        try
        {
            Assert.Equal(IPAddress.Parse("127.0.0.53"), HostResolver.FirstUpstream(path));
            Assert.Null(HostResolver.FirstUpstream(path + ".missing"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
