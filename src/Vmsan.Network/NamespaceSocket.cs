using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Vmsan.Core.Errors;

namespace Vmsan.Network;

/// <summary>
/// Sockets created inside a named network namespace (<c>/run/netns/&lt;name&gt;</c>), so the host
/// reaches a VM's agent without the agent ever being reachable from the host's own networks.
/// A socket keeps the namespace it was created in: only its creation happens on a thread that
/// entered the namespace; connecting, reading and writing run anywhere.
/// </summary>
public static class NamespaceSocket
{
    /// <summary>Creates an unconnected socket inside <paramref name="netnsName"/> (e.g. to listen there).</summary>
    /// <exception cref="VmsanException"><see cref="ErrorCode.VmNotRunning"/> when the namespace does not exist.</exception>
    public static Task<Socket> CreateAsync(string netnsName, AddressFamily addressFamily, SocketType socketType,
        ProtocolType protocolType, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        return NetnsThread.RunAsync(netnsName, () => new Socket(addressFamily, socketType, protocolType));
    }

    /// <summary>Opens a TCP connection to <paramref name="endpoint"/> from inside <paramref name="netnsName"/>.</summary>
    /// <exception cref="VmsanException">
    /// <see cref="ErrorCode.VmNotRunning"/> when the namespace does not exist;
    /// <see cref="ErrorCode.AgentUnreachable"/> when nothing accepts the connection.
    /// </exception>
    public static async Task<Socket> ConnectAsync(string netnsName, IPEndPoint endpoint, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = await CreateAsync(netnsName, endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp, ct)
            .ConfigureAwait(false);
        try
        {
            // Agent calls are small request/response exchanges: don't let Nagle hold them back.
            socket.NoDelay = true;
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var why = ex.SocketErrorCode == SocketError.ConnectionRefused ? "nothing is listening" : ex.Message;
            throw new VmsanException(ErrorCode.AgentUnreachable,
                $"Cannot connect to {endpoint} in network namespace '{netnsName}': {why}.",
                "The VM may still be booting or its agent has stopped; check `vmsan list` and the VM's console log.", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A connection factory for stream clients, e.g. an HTTP client's ConnectCallback.</summary>
    public static Func<CancellationToken, ValueTask<Stream>> StreamFactory(string netnsName, IPEndPoint endpoint)
    {
        NetnsThread.PathOf(netnsName);
        ArgumentNullException.ThrowIfNull(endpoint);
        return async ct =>
        {
            var socket = await ConnectAsync(netnsName, endpoint, ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        };
    }

    /// <summary>
    /// A <see cref="SocketsHttpHandler.ConnectCallback"/> that connects every HTTP connection to
    /// <paramref name="endpoint"/> inside <paramref name="netnsName"/>, whatever host the request URI names.
    /// </summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> HttpConnectCallback(
        string netnsName, IPEndPoint endpoint)
    {
        var factory = StreamFactory(netnsName, endpoint);
        return (_, ct) => factory(ct);
    }
}
