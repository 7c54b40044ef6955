using System.Net;
using System.Net.Sockets;

namespace Vmsan.Network;

/// <summary>Picks the DNS resolver guests use: the host's own, as long as a guest can reach it.</summary>
public static class HostResolver
{
    public const string DefaultResolvConf = "/etc/resolv.conf";

    /// <summary>
    /// The first <c>nameserver</c> in <paramref name="path"/> that a guest can reach through NAT:
    /// loopback resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq) answer only the host,
    /// and the guest network is IPv4-only, so both are skipped. Null when none is left or the file is missing.
    /// </summary>
    public static IPAddress? FirstGuestReachable(string path = DefaultResolvConf)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            return null;
        }
        return Parse(lines);
    }

    /// <summary>The same choice over the lines of a resolv.conf.</summary>
    public static IPAddress? Parse(IEnumerable<string> lines) =>
        Nameservers(lines).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a) && !a.Equals(IPAddress.Any));

    /// <summary>
    /// The resolver the DNS filter forwards to: the first <c>nameserver</c> of any kind, loopback
    /// included (the filter's upstream socket lives in the namespace vmsan runs in, where
    /// systemd-resolved's 127.0.0.53 answers). Null when there is none.
    /// </summary>
    public static IPAddress? FirstUpstream(string path = DefaultResolvConf)
    {
        try
        {
            return Nameservers(File.ReadAllLines(path)).FirstOrDefault(a => !a.Equals(IPAddress.Any) && !a.Equals(IPAddress.IPv6Any));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Every <c>nameserver</c> address of a resolv.conf, in order.</summary>
    public static IEnumerable<IPAddress> Nameservers(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        foreach (var raw in lines)
        {
            var line = raw.AsSpan().Trim();
            if (line.IsEmpty || line[0] is '#' or ';')
                continue;
            const string keyword = "nameserver";
            if (!line.StartsWith(keyword, StringComparison.Ordinal) || line.Length == keyword.Length || !char.IsWhiteSpace(line[keyword.Length]))
                continue;
            var value = line[keyword.Length..].Trim();
            var end = value.IndexOfAny(' ', '\t');
            if (end >= 0)
                value = value[..end];
            if (IPAddress.TryParse(value, out var address))
                yield return address;
        }
    }
}
