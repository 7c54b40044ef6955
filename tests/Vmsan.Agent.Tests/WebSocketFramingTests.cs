using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using CsCheck;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Tests;

/// <summary>The handshake, the frame codec across WebSocket message boundaries, limits.</summary>
public sealed class WebSocketFramingTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 30_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = Timeout)]
    public async Task The_agent_answers_a_websocket_upgrade_with_the_RFC_6455_accept_key()
    {
        // The RFC's own example key: the accept value is fixed by the standard, so a wrong hash fails here.
        var agent = fixture.Agent;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, agent.Port, Ct);
        var stream = tcp.GetStream();
        var request = $"GET {AgentProtocol.Paths.ExecStream} HTTP/1.1\r\nHost: agent\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                      $"Authorization: Bearer {agent.Token}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), Ct);
        var head = new StringBuilder();
        var buf = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(buf, Ct) == 1)
            head.Append((char)buf[0]);
        Assert.StartsWith("HTTP/1.1 101", head.ToString(), StringComparison.Ordinal);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", head.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact(Timeout = Timeout)]
    public async Task Frames_survive_any_split_across_websocket_messages()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, Ct);
        using var server = await listener.AcceptAsync(Ct);
        using var sender = WebSocket.CreateFromStream(new NetworkStream(client), new WebSocketCreationOptions { IsServer = false });
        using var receiver = WebSocket.CreateFromStream(new NetworkStream(server), new WebSocketCreationOptions { IsServer = true });
        var reader = new FrameReader(WebSocketStream.Create(receiver, WebSocketMessageType.Binary, ownsWebSocket: false));

        var frames = Gen.Select(Gen.Byte[1, 9], Gen.Byte.Array[0, 2000]).Array[1, 8];
        var cuts = Gen.Int[1, 700].Array[0, 12];
        await Gen.Select(frames, cuts).SampleAsync(async sample =>
        {
            var (input, cutSizes) = sample;
            var wire = input.SelectMany(f => FrameCodec.Encode((FrameType)f.Item1, f.Item2)).ToArray();
            var offset = 0;
            foreach (var size in cutSizes.Append(wire.Length))
            {
                var n = Math.Min(size, wire.Length - offset);
                if (n == 0)
                {
                    // An empty message reads as end of stream through WebSocketStream: peers never send one.
                    continue;
                }

                await sender.SendAsync(wire.AsMemory(offset, n), WebSocketMessageType.Binary, endOfMessage: true, Ct);
                offset += n;
            }

            foreach (var (type, payload) in input)
            {
                var frame = await reader.ReadFrameAsync(Ct);
                Assert.NotNull(frame);
                Assert.Equal((FrameType)type, frame.Value.Type);
                Assert.Equal(payload, frame.Value.Payload.ToArray());
            }
        }, iter: 300, threads: 1);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_bad_request_on_the_websocket_gets_an_error_frame_and_the_agent_keeps_serving()
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + fixture.Agent.Token);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{fixture.Agent.Port}{AgentProtocol.Paths.ExecStream}"), Ct);
        await socket.SendAsync("{not json"u8.ToArray(), WebSocketMessageType.Text, true, Ct);
        var buffer = new byte[4096];
        var received = await socket.ReceiveAsync(buffer, Ct);
        Assert.Equal((byte)FrameType.Error, buffer[0]);
        Assert.Contains(AgentErrorCodes.BadRequest, Encoding.UTF8.GetString(buffer, FrameCodec.HeaderSize, received.Count - FrameCodec.HeaderSize), StringComparison.Ordinal);

        // An abrupt disconnect in the middle of a stream, then the agent still answers.
        var exec = await fixture.Client.OpenExecAsync(new ExecRequest(["cat"], Stdin: true), Ct);
        await exec.WriteStdinAsync(new byte[] { 1, 2, 3 }, Ct);
        exec.Dispose();
        await fixture.Client.HealthAsync(Ct);
        using var stdout = new MemoryStream();
        Assert.Equal(0, (await fixture.Client.ExecAsync(new ExecRequest(["true"]), stdout, null, Ct)).ExitCode);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_plain_get_on_the_websocket_path_is_426()
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", fixture.Agent.Token);
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{fixture.Agent.Port}{AgentProtocol.Paths.ExecStream}"), Ct);
        Assert.Equal(426, (int)response.StatusCode);
    }

    [Fact(Timeout = Timeout)]
    public async Task Limits_answer_429_and_413_with_a_reason()
    {
        await using var agent = await AgentProcess.StartAsync(extraArgs: ["--max-execs", "2", "--max-sessions", "1"]);
        using var client = agent.CreateClient();
        await client.StartDetachedAsync(new ExecRequest(["sleep", "30"]), Ct);
        await client.StartDetachedAsync(new ExecRequest(["sleep", "30"]), Ct);

        var detached = await Assert.ThrowsAsync<AgentException>(() => client.StartDetachedAsync(new ExecRequest(["true"]), Ct));
        var stream = await Assert.ThrowsAsync<AgentException>(() => client.OpenExecAsync(new ExecRequest(["true"]), Ct));
        var plain = await Assert.ThrowsAsync<AgentException>(() => client.ExecAsync(new ExecRequest(["true"]), null, null, Ct));
        var tooBig = await Assert.ThrowsAsync<AgentException>(() =>
            client.StartDetachedAsync(new ExecRequest(["echo", new string('x', 2 * 1024 * 1024)]), Ct));

        Assert.All(new[] { detached, stream, plain }, e => Assert.Equal(AgentErrorCodes.LimitReached, e.Code));
        Assert.Equal(AgentErrorReason.BadRequest, tooBig.Reason);
        Assert.Contains("413", tooBig.Message, StringComparison.Ordinal);
        foreach (var e in await client.ListExecsAsync(Ct))
        {
            await client.SignalExecAsync(e.Id, 9, Ct);
        }

        // Slots come back once the processes are gone.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await client.ListExecsAsync(Ct)).Any(e => e.State == "running"))
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(25, Ct);
        }

        using var output = new MemoryStream();
        Assert.Equal(0, (await client.ExecAsync(new ExecRequest(["true"]), output, null, Ct)).ExitCode);
    }
}
