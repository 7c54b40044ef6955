using System.Net;
using System.Net.Sockets;

namespace Vmsan.Agent.Http;

/// <summary>Accepts TCP connections and serves each on its own async loop.</summary>
internal sealed class HttpServer : IDisposable
{
    private readonly Socket _listener;
    private readonly Router _router;
    private readonly HttpLimits _limits;
    private readonly CancellationTokenSource _stopping = new();

    public HttpServer(IPEndPoint endPoint, Router router, HttpLimits limits)
    {
        _router = router;
        _limits = limits;
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endPoint);
        _listener.Listen(512);
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public CancellationToken Stopping => _stopping.Token;

    public async Task RunAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e)
            {
                // EMFILE and friends: back off instead of spinning.
                AgentLog.Warn($"accept: {e.Message}");
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }

            var connection = new HttpConnection(client, _limits);
            _ = connection.RunAsync(_router, _stopping.Token);
        }
    }

    public void Stop()
    {
        _stopping.Cancel();
        _listener.Dispose();
    }

    public void Dispose()
    {
        Stop();
        _stopping.Dispose();
    }
}
