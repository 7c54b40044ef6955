using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Vmsan.UnitTests.Vmm;

/// <summary>
/// Speaks enough QMP on a Unix socket to drive <c>QmpClient</c>: the greeting, then one JSON
/// command per line. <see cref="Handler"/> decides each reply; by default every command succeeds
/// with an empty return.
/// </summary>
public sealed class FakeQmpServer : IAsyncDisposable
{
    public const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}""";

    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentBag<Socket> _clients = [];

    private FakeQmpServer(string path, string greeting)
    {
        Path = path;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        _listener.Listen(8);
        _acceptLoop = AcceptLoopAsync(greeting);
    }

    public string Path { get; }

    /// <summary>Commands received, in order (the "execute" name).</summary>
    public ConcurrentQueue<JsonObject> Received { get; } = new();

    /// <summary>Given a command, what to write back (lines, without the newline); null writes nothing.</summary>
    public Func<JsonObject, Connection, IEnumerable<string>?> Handler { get; set; } =
        (cmd, _) => [Reply(cmd, new JsonObject())];

    public static FakeQmpServer Start(string path, string greeting = Greeting) => new(path, greeting);

    public static string Reply(JsonObject cmd, JsonNode? value) =>
        new JsonObject { ["return"] = value, ["id"] = cmd["id"]?.DeepClone() }.ToJsonString();

    public static string Error(JsonObject cmd, string cls, string desc) =>
        new JsonObject { ["error"] = new JsonObject { ["class"] = cls, ["desc"] = desc }, ["id"] = cmd["id"]?.DeepClone() }.ToJsonString();

    public static string Event(string name, JsonObject? data = null) =>
        new JsonObject { ["event"] = name, ["data"] = data, ["timestamp"] = new JsonObject { ["seconds"] = 1, ["microseconds"] = 2 } }.ToJsonString();

    private async Task AcceptLoopAsync(string greeting)
    {
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var client = await _listener.AcceptAsync(_cts.Token);
                _clients.Add(client);
                _ = ServeAsync(new Connection(client), greeting);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(Connection conn, string greeting)
    {
        try
        {
            await conn.WriteLineAsync(greeting);
            while (!_cts.IsCancellationRequested)
            {
                var line = await conn.Reader.ReadLineAsync(_cts.Token);
                if (line is null)
                    return;
                var cmd = JsonNode.Parse(line)!.AsObject();
                Received.Enqueue(cmd);
                foreach (var reply in Handler(cmd, conn) ?? [])
                    await conn.WriteLineAsync(reply);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _listener.Dispose();
        foreach (var c in _clients)
            c.Dispose();
        await _acceptLoop;
        _cts.Dispose();
    }

    public sealed class Connection
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;

        public Connection(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
            Reader = new StreamReader(_stream, Encoding.UTF8);
        }

        public StreamReader Reader { get; }

        public async Task WriteLineAsync(string line) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));

        /// <summary>Closes the connection, as QEMU does when it exits.</summary>
        public void Close() => _socket.Close();

        /// <summary>Ends what the client reads (EOF) but keeps the socket open and unread.</summary>
        public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);
    }
}
