using Vmsan.Core.State;
using Vmsan.Errors;
using Vmsan.Network.Ports;

namespace Vmsan;

/// <summary>A port published from the host to the guest: <c>[ADDRESS:]HOST:GUEST[/tcp|udp]</c>.</summary>
/// <param name="Address">The host address it listens on (null: every address).</param>
/// <param name="HostPort">The host port.</param>
/// <param name="GuestPort">The guest port it forwards to.</param>
/// <param name="Protocol"><c>tcp</c> or <c>udp</c>.</param>
public sealed record PortMapping(string? Address, int HostPort, int GuestPort, string Protocol)
{
    /// <summary>Parses <c>8080:80</c>, <c>127.0.0.1:8080:80/tcp</c>, <c>[::1]:5353:53/udp</c>.</summary>
    /// <param name="spec">The mapping as <c>vmsan create -p</c> takes it.</param>
    /// <exception cref="VmsanException">INVALID_ARGUMENT, naming the bad part.</exception>
    public static PortMapping Parse(string spec) => PublicErrors.Run(() => From(PortSpec.Parse(spec)));

    /// <summary>As <c>vmsan</c> prints it: <c>[ADDRESS:]HOST:GUEST/PROTO</c>.</summary>
    public override string ToString() => ToCore().ToString();

    internal PublishedPort ToCore() => new(Address, HostPort, GuestPort, Protocol);

    internal static PortMapping From(PublishedPort p) => new(p.Address, p.HostPort, p.GuestPort, p.Protocol);
}
