using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Vmsan.Network;

namespace Vmsan.IntegrationTests.Images;

/// <summary>An HTTP request line the proxy passed on, with when it arrived (<see cref="Stopwatch.GetTimestamp"/>).</summary>
public sealed record ProxiedRequest(long At, string Method, string Path);

/// <summary>
/// A TCP proxy in a namespace that slows the server's answers down (to catch a download in the middle),
/// and logs the HTTP request lines clients send through it, timestamped, so a test can tell when each was asked for.
/// </summary>
public sealed partial class ThrottledProxy : IAsyncDisposable
{
    private readonly ConcurrentQueue<ProxiedRequest> _requests = new();
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
                            var toServer = Pump(client, up, int.MaxValue, null, new RequestLog(_requests).Observe, _cts.Token);
                            var toClient = Pump(up, client, bytesPerTick, this, null, _cts.Token);
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

    /// <summary>Every request line so far, in arrival order (a keep-alive connection's requests each show).</summary>
    public IReadOnlyList<ProxiedRequest> Requests => [.. _requests];

    /// <summary>Finds request lines in one connection's client-to-server bytes, including a line split across reads.</summary>
    private sealed partial class RequestLog(ConcurrentQueue<ProxiedRequest> into)
    {
        private string _carry = "";

        public void Observe(ReadOnlySpan<byte> data)
        {
            var at = Stopwatch.GetTimestamp();
            var text = _carry + Encoding.Latin1.GetString(data);
            var end = text.LastIndexOf("\r\n", StringComparison.Ordinal);
            // Only complete lines are matched; the rest waits for the next read (bounded: request heads are small).
            _carry = end < 0 ? text[Math.Max(0, text.Length - 4096)..] : text[(end + 2)..];
            if (end < 0)
                return;
            foreach (Match m in RequestLine().Matches(text[..(end + 2)]))
                into.Enqueue(new ProxiedRequest(at, m.Groups[1].Value, m.Groups[2].Value));
        }

        [GeneratedRegex(@"^(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r$", RegexOptions.Multiline)]
        private static partial Regex RequestLine();
    }

    public static async Task<ThrottledProxy> StartAsync(string ns, int upstreamPort, int bytesPerTick)
    {
        var s = await NamespaceSocket.CreateAsync(ns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        s.Listen(16);
        return new ThrottledProxy(s, ns, upstreamPort, bytesPerTick);
    }

    private static async Task Pump(Socket from, Socket to, int perTick, ThrottledProxy? counter, RequestObserver? observe, CancellationToken ct)
    {
        var buf = new byte[Math.Min(perTick, 1 << 16)];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buf, SocketFlags.None, ct);
                if (n == 0)
                    break;
                observe?.Invoke(buf.AsSpan(0, n));
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

    private delegate void RequestObserver(ReadOnlySpan<byte> data);

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
