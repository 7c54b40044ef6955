using System.Net;
using System.Net.Sockets;
using Vmsan.Network;

namespace Vmsan.IntegrationTests.Images;

/// <summary>A TCP proxy in a namespace that slows the server's answers down (to catch a download in the middle).</summary>
public sealed class ThrottledProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;

    private ThrottledProxy(Socket listener, string ns, int upstreamPort, int bytesPerTick)
    {
        _listener = listener;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _loop = Task.Run(async () =>
        {
            while (!_cts.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(_cts.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (client)
                    using (var up = await NamespaceSocket.CreateAsync(ns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
                    {
                        try
                        {
                            await up.ConnectAsync(new IPEndPoint(IPAddress.Loopback, upstreamPort), _cts.Token);
                            var toServer = Pump(client, up, int.MaxValue, null, _cts.Token);
                            var toClient = Pump(up, client, bytesPerTick, this, _cts.Token);
                            await Task.WhenAny(toServer, toClient);
                        }
                        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                        {
                        }
                    }
                });
            }
        });
    }

    public int Port { get; }

    /// <summary>Bytes the server sent to clients so far (a blob downloaded twice shows here twice).</summary>
    public long BytesToClients => Interlocked.Read(ref _bytesToClients);

    private long _bytesToClients;

    public static async Task<ThrottledProxy> StartAsync(string ns, int upstreamPort, int bytesPerTick)
    {
        var s = await NamespaceSocket.CreateAsync(ns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        s.Listen(16);
        return new ThrottledProxy(s, ns, upstreamPort, bytesPerTick);
    }

    private static async Task Pump(Socket from, Socket to, int perTick, ThrottledProxy? counter, CancellationToken ct)
    {
        var buf = new byte[Math.Min(perTick, 1 << 16)];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buf, SocketFlags.None, ct);
                if (n == 0)
                    break;
                await to.SendAsync(buf.AsMemory(0, n), SocketFlags.None, ct);
                if (counter is not null)
                    Interlocked.Add(ref counter._bytesToClients, n);
                if (perTick != int.MaxValue)
                    await Task.Delay(20, ct);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _listener.Dispose();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }
        _cts.Dispose();
    }
}
