using System.Net;
using System.Net.Sockets;
using Vmsan.Network;

namespace Vmsan.IntegrationTests.Infrastructure;

public static class NamespaceSockets
{
    /// <summary>A listening TCP socket that lives in <paramref name="netns"/> (created there, usable from any thread).</summary>
    public static async Task<Socket> ListenAsync(string netns, IPEndPoint endpoint)
    {
        var s = await NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(endpoint);
        s.Listen(16);
        return s;
    }
}
