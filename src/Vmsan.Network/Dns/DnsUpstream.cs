using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Vmsan.Network.Dns;

/// <summary>Sends one rebuilt query to the resolver and returns its answer.</summary>
public interface IDnsUpstream
{
    /// <summary>The answer, or null when the resolver did not answer in time.</summary>
    Task<DnsMessage?> QueryAsync(DnsMessage query, CancellationToken ct);
}

/// <summary>
/// The resolver of the namespace vmsan runs in, over UDP (a fresh socket, so a fresh random source
/// port, per query) with TCP when the answer is truncated. Sockets are created by the calling
/// thread, i.e. in the supervisor's own namespace: a loopback resolver (systemd-resolved's
/// 127.0.0.53) works, which a guest could never reach through NAT.
/// </summary>
public sealed class DnsUpstream(IPEndPoint server) : IDnsUpstream
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public IPEndPoint Server { get; } = server ?? throw new ArgumentNullException(nameof(server));

    public async Task<DnsMessage?> QueryAsync(DnsMessage query, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(query);
        var wire = query.Encode();
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var reply = await UdpAsync(query, wire, ct).ConfigureAwait(false);
            if (reply is null)
                continue;
            return reply.Truncated ? await TcpAsync(query, wire, ct).ConfigureAwait(false) : reply;
        }
        return null;
    }

    private async Task<DnsMessage?> UdpAsync(DnsMessage query, byte[] wire, CancellationToken ct)
    {
        using var s = new Socket(Server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(Timeout);
        try
        {
            await s.ConnectAsync(Server, cts.Token).ConfigureAwait(false);
            await s.SendAsync(wire, SocketFlags.None, cts.Token).ConfigureAwait(false);
            var buf = new byte[65535];
            while (true)
            {
                var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token).ConfigureAwait(false);
                DnsMessage reply;
                try
                {
                    reply = DnsMessage.Parse(buf.AsSpan(0, n));
                }
                catch (DnsFormatException)
                {
                    continue;
                }
                // Anything that is not the answer to this query (a stray or spoofed datagram) is ignored.
                if (DnsFilter.Answers(query, reply))
                    return reply;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private async Task<DnsMessage?> TcpAsync(DnsMessage query, byte[] wire, CancellationToken ct)
    {
        using var s = new Socket(Server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(Timeout * 2);
        try
        {
            await s.ConnectAsync(Server, cts.Token).ConfigureAwait(false);
            var framed = new byte[wire.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)wire.Length);
            wire.CopyTo(framed, 2);
            await s.SendAsync(framed, SocketFlags.None, cts.Token).ConfigureAwait(false);
            var msg = await DnsTcp.ReadFrameAsync(s, cts.Token).ConfigureAwait(false);
            if (msg is null)
                return null;
            var reply = DnsMessage.Parse(msg);
            return DnsFilter.Answers(query, reply) ? reply : null;
        }
        catch (Exception ex) when (ex is SocketException or DnsFormatException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return null;
        }
    }
}

internal static class DnsTcp
{
    /// <summary>One length-prefixed message (RFC 1035 §4.2.2), or null at a clean EOF.</summary>
    public static async Task<byte[]?> ReadFrameAsync(Socket s, CancellationToken ct)
    {
        var len = new byte[2];
        if (!await ReadExactlyAsync(s, len, ct).ConfigureAwait(false))
            return null;
        var n = BinaryPrimitives.ReadUInt16BigEndian(len);
        var msg = new byte[n];
        return await ReadExactlyAsync(s, msg, ct).ConfigureAwait(false) ? msg : null;
    }

    private static async Task<bool> ReadExactlyAsync(Socket s, Memory<byte> buf, CancellationToken ct)
    {
        var got = 0;
        while (got < buf.Length)
        {
            var n = await s.ReceiveAsync(buf[got..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
                return false;
            got += n;
        }
        return true;
    }

    public static async Task WriteFrameAsync(Socket s, byte[] msg, CancellationToken ct)
    {
        var framed = new byte[msg.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)msg.Length);
        msg.CopyTo(framed, 2);
        await s.SendAsync(framed, SocketFlags.None, ct).ConfigureAwait(false);
    }
}
