using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan.Network.Ports;

/// <summary>Parses and checks <c>-p/--publish-port</c> values (docker's syntax).</summary>
public static class PortSpec
{
    /// <summary>
    /// <c>[ADDR:]HOST:GUEST[/tcp|/udp]</c>, e.g. <c>8080:80</c>, <c>127.0.0.1:3000:3000</c>,
    /// <c>[::1]:53:53/udp</c>. INVALID_ARGUMENT naming the value otherwise.
    /// </summary>
    public static PublishedPort Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        const string fix = "Write -p HOST:GUEST, -p ADDR:HOST:GUEST or add /tcp or /udp, e.g. -p 8080:80 or -p 127.0.0.1:3000:3000.";
        var t = text.Trim();
        var protocol = "tcp";
        var slash = t.LastIndexOf('/');
        if (slash >= 0)
        {
            protocol = t[(slash + 1)..].ToLowerInvariant();
            t = t[..slash];
            if (protocol is not ("tcp" or "udp"))
                throw VmsanException.Invalid($"--publish-port {text}: protocol must be tcp or udp.", fix);
        }
        string? address = null;
        string rest;
        if (t.StartsWith('['))
        {
            var close = t.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= t.Length || t[close + 1] != ':')
                throw VmsanException.Invalid($"--publish-port {text}: bad [IPv6] address.", fix);
            address = t[1..close];
            rest = t[(close + 2)..];
        }
        else
        {
            var parts = t.Split(':');
            if (parts.Length == 3)
            {
                address = parts[0];
                rest = parts[1] + ":" + parts[2];
            }
            else if (parts.Length == 2)
                rest = t;
            else
                throw VmsanException.Invalid($"--publish-port {text}: expected [ADDR:]HOST:GUEST.", fix);
        }
        if (address is not null)
        {
            if (!IPAddress.TryParse(address, out var a) || (a.AddressFamily == AddressFamily.InterNetwork && address.Split('.').Length != 4))
                throw VmsanException.Invalid($"--publish-port {text}: '{address}' is not an IP address.", fix);
            address = a.ToString();
        }
        var ports = rest.Split(':');
        if (ports.Length != 2)
            throw VmsanException.Invalid($"--publish-port {text}: expected [ADDR:]HOST:GUEST.", fix);
        return new PublishedPort(address, Port(ports[0], text, fix), Port(ports[1], text, fix), protocol);
    }

    private static int Port(string s, string text, string fix) =>
        s.Length is > 0 and <= 5 && s.All(char.IsAsciiDigit) && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 1 and <= 65535
            ? p
            : throw VmsanException.Invalid($"--publish-port {text}: '{s}' is not a port (1-65535).", fix);

    /// <summary>True when the two bindings would take the same socket (same protocol and port, overlapping addresses).</summary>
    public static bool Collide(PublishedPort a, PublishedPort b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.Protocol == b.Protocol && a.HostPort == b.HostPort && (a.Address is null || b.Address is null || a.Address == b.Address);
    }

    /// <summary>INVALID_ARGUMENT when a host port is given twice.</summary>
    public static void CheckDistinct(IReadOnlyList<PublishedPort> ports)
    {
        ArgumentNullException.ThrowIfNull(ports);
        for (var i = 0; i < ports.Count; i++)
            for (var j = 0; j < i; j++)
                if (Collide(ports[i], ports[j]))
                    throw VmsanException.Invalid($"--publish-port {ports[i]}: host port {ports[i].HostPort}/{ports[i].Protocol} is given twice ({ports[j]}).",
                        "Publish each host port once.");
    }

    /// <summary>
    /// PORT_IN_USE when something in the namespace vmsan runs in holds the port: tried by binding
    /// it (and letting go) the way the forwarder will.
    /// </summary>
    public static void CheckFree(PublishedPort port, string? owner = null)
    {
        ArgumentNullException.ThrowIfNull(port);
        try
        {
            foreach (var s in BindAll(port))
                s.Dispose();
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            throw new VmsanException(ErrorCode.PortInUse,
                $"--publish-port {port}: host port {port.HostPort}/{port.Protocol} is in use{(owner is null ? "" : $" by {owner}")}.",
                "Pick another host port, or stop what holds it (ss -ltnup shows it).", ex);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            throw VmsanException.Invalid($"--publish-port {port}: {port.Address} is not an address of this host.", "Use one of the host's addresses, or leave ADDR out.");
        }
    }

    /// <summary>
    /// The sockets the forwarder listens on: the given address, or 0.0.0.0 and [::] (IPv6-only) as
    /// two sockets: a dual-stack socket with SO_REUSEADDR would sit beside an IPv4 wildcard
    /// listener of someone else's instead of failing. IPv6 is skipped where the host has none.
    /// </summary>
    public static List<Socket> BindAll(PublishedPort port)
    {
        ArgumentNullException.ThrowIfNull(port);
        if (port.Address is not null)
            return [Bind(IPAddress.Parse(port.Address), port, v6Only: false)];
        var sockets = new List<Socket> { Bind(IPAddress.Any, port, v6Only: false) };
        try
        {
            sockets.Add(Bind(IPAddress.IPv6Any, port, v6Only: true));
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable or SocketError.ProtocolNotSupported)
        {
        }
        catch
        {
            foreach (var s in sockets)
                s.Dispose();
            throw;
        }
        return sockets;
    }

    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private static Socket Bind(IPAddress address, PublishedPort port, bool v6Only)
    {
        var tcp = port.Protocol == "tcp";
        var s = new Socket(address.AddressFamily, tcp ? SocketType.Stream : SocketType.Dgram, tcp ? ProtocolType.Tcp : ProtocolType.Udp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
                s.DualMode = !v6Only;
            // Lets a restarted VM take its port back over connections still in TIME_WAIT. Set as the
            // raw SO_REUSEADDR: .NET's SocketOptionName.ReuseAddress also sets SO_REUSEPORT on Linux,
            // and with it this bind would succeed beside a foreign listener that did the same (and
            // share its connections) instead of failing with EADDRINUSE.
            if (tcp)
                s.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            s.Bind(new IPEndPoint(address, port.HostPort));
            if (tcp)
                s.Listen(128);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }
}
