using System.Net;
using System.Net.Sockets;
using Vmsan.Network;

namespace Vmsan.Snapshots;

/// <summary>
/// Moves a VMM's device state over TCP on the loopback of the VM's own network namespace. A confined QEMU
/// (seccomp spawn=deny, chrooted into an empty jail) can neither run <c>exec:</c> URIs nor open host paths,
/// but it can connect and listen; the socket on our side is created in that namespace, so nothing else sees it.
/// </summary>
internal static class StateChannel
{
    /// <summary>Clones listen here in their own (fresh) namespace while their state loads.</summary>
    public const int IncomingPort = 9120;

    /// <summary>Listens in <paramref name="netns"/>; the task writes one connection's bytes to <paramref name="path"/> (temp + rename).</summary>
    public static async Task<(string Uri, Task<long> Received)> ReceiveToFileAsync(string netns, string path, CancellationToken ct)
    {
        var listener = await NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp).ConfigureAwait(false);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        async Task<long> Receive()
        {
            using (listener)
            {
                using var conn = await listener.AcceptAsync(ct).ConfigureAwait(false);
                var part = path + ".part";
                await using (var file = new FileStream(part, FileMode.Create, FileAccess.Write))
                await using (var stream = new NetworkStream(conn, ownsSocket: false))
                {
                    await stream.CopyToAsync(file, ct).ConfigureAwait(false);
                    await file.FlushAsync(ct).ConfigureAwait(false);
                }
                File.Move(part, path, overwrite: true);
                return new FileInfo(path).Length;
            }
        }
        return ($"tcp:127.0.0.1:{port}", Receive());
    }

    /// <summary>Connects (retrying while the VMM starts listening) and sends <paramref name="path"/>.</summary>
    public static async Task SendFileAsync(string netns, int port, string path, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        Socket socket;
        while (true)
        {
            try
            {
                socket = await NamespaceSocket.ConnectAsync(netns, new IPEndPoint(IPAddress.Loopback, port), ct).ConfigureAwait(false);
                break;
            }
            catch (Exception ex) when ((ex is SocketException || ex.InnerException is SocketException) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5, ct).ConfigureAwait(false);
            }
        }
        using (socket)
        {
            await using (var file = new FileStream(path, FileMode.Open, FileAccess.Read))
            await using (var stream = new NetworkStream(socket, ownsSocket: false))
                await file.CopyToAsync(stream, ct).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
        }
    }
}
