using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vmsan.Network.Proxy;

/// <summary>
/// Where a connection redirected by nftables (<c>redirect to :15001</c>) was going:
/// getsockopt(SOL_IP, SO_ORIGINAL_DST) returns the pre-NAT destination from conntrack. Read with
/// <see cref="Socket.GetRawSocketOption"/>, which is getsockopt itself: no P/Invoke of our own needed.
/// </summary>
public static class OriginalDestination
{
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SoOriginalDst = 80; // also IP6T_SO_ORIGINAL_DST

    public static IPEndPoint? Of(Socket accepted)
    {
        ArgumentNullException.ThrowIfNull(accepted);
        try
        {
            if (accepted.AddressFamily == AddressFamily.InterNetwork)
            {
                Span<byte> sa = stackalloc byte[16]; // struct sockaddr_in
                if (accepted.GetRawSocketOption(SolIp, SoOriginalDst, sa) < 8)
                    return null;
                return new IPEndPoint(new IPAddress(sa.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(sa[2..]));
            }
            Span<byte> sa6 = stackalloc byte[28]; // struct sockaddr_in6
            if (accepted.GetRawSocketOption(SolIpv6, SoOriginalDst, sa6) < 24)
                return null;
            return new IPEndPoint(new IPAddress(sa6.Slice(8, 16)), BinaryPrimitives.ReadUInt16BigEndian(sa6[2..]));
        }
        catch (SocketException)
        {
            return null; // not redirected (ENOENT): nothing to proxy to
        }
    }
}
