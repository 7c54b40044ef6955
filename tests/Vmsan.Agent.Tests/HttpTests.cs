using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Tests;

public sealed class HttpTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private const int Timeout = 15_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = Timeout)]
    public async Task Health_answers_ok_with_the_hostname_and_needs_no_token()
    {
        using var anonymous = fixture.Agent.CreateClient(token: null);

        var health = await anonymous.HealthAsync(Ct);

        Assert.Equal("ok", health.Status);
        Assert.Equal("vm-test0001", health.Hostname);
        Assert.False(string.IsNullOrEmpty(health.Version));
        Assert.True(health.UptimeMs >= 0);
    }

    [Fact(Timeout = Timeout)]
    public async Task Waiting_for_health_returns_at_once_when_the_agent_is_up()
    {
        var health = await fixture.Client.WaitUntilHealthyAsync(TimeSpan.FromSeconds(5), Ct);

        Assert.Equal("ok", health.Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task Waiting_for_health_on_a_closed_port_times_out_with_a_reason()
    {
        using var listener = new TcpListenerProbe();
        using var client = AgentClient.ForTcp("127.0.0.1", listener.FreePort, "t");

        var e = await Assert.ThrowsAsync<AgentException>(() => client.WaitUntilHealthyAsync(TimeSpan.FromMilliseconds(500), Ct));

        Assert.Equal(AgentErrorReason.Timeout, e.Reason);
    }

    [Fact(Timeout = Timeout)]
    public async Task Waiting_for_health_rides_out_refused_connections_until_the_agent_listens()
    {
        using var probe = new TcpListenerProbe();
        using var client = AgentClient.ForTcp("127.0.0.1", probe.FreePort, null);

        var waiting = client.WaitUntilHealthyAsync(TimeSpan.FromSeconds(10), Ct);
        await Task.Delay(300, Ct);
        Assert.False(waiting.IsCompleted);
        await using var late = await AgentProcess.StartAsync(port: probe.FreePort);

        Assert.Equal("ok", (await waiting).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_call_without_a_token_is_refused_with_401()
    {
        using var anonymous = fixture.Agent.CreateClient(token: null);

        var e = await Assert.ThrowsAsync<AgentException>(() => anonymous.ExecAsync(new ExecRequest(["true"]), null, null, Ct));

        Assert.Equal(AgentErrorReason.Unauthorized, e.Reason);
        Assert.Equal(AgentErrorCodes.Unauthorized, e.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_call_with_a_wrong_token_is_refused_with_403()
    {
        using var wrong = fixture.Agent.CreateClient(fixture.Agent.Token[..^1] + "x");

        var e = await Assert.ThrowsAsync<AgentException>(() => wrong.ExecAsync(new ExecRequest(["true"]), null, null, Ct));

        Assert.Equal(AgentErrorReason.Forbidden, e.Reason);
        Assert.Equal(AgentErrorCodes.Forbidden, e.Code);
    }

    [Fact(Timeout = Timeout)]
    public async Task Raw_401_and_403_carry_a_json_error_body()
    {
        var missing = await SendRawAsync("POST /exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
        var wrong = await SendRawAsync("POST /shutdown HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 401 ", missing, StringComparison.Ordinal);
        Assert.Equal("UNAUTHORIZED", JsonDocument.Parse(Body(missing)).RootElement.GetProperty("code").GetString());
        Assert.StartsWith("HTTP/1.1 403 ", wrong, StringComparison.Ordinal);
        Assert.Equal("FORBIDDEN", JsonDocument.Parse(Body(wrong)).RootElement.GetProperty("code").GetString());
        Assert.False(fixture.Agent.HasExited);
    }

    [Theory(Timeout = Timeout)]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("\x01\x02\x03\x04 binary junk \xff\r\n\r\n")]
    [InlineData("GET /health HTTP/9.9\r\n\r\n")]
    [InlineData("GET health HTTP/1.1\r\n\r\n")]
    [InlineData("GET /health HTTP/1.1\r\nNo colon here\r\n\r\n")]
    [InlineData("GET /health HTTP/1.1\r\n folded: header\r\n\r\n")]
    [InlineData("POST /exec HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")]
    [InlineData("POST /exec HTTP/1.1\r\nContent-Length: abc\r\n\r\n")]
    public async Task Malformed_requests_get_400_and_the_agent_keeps_serving(string request)
    {
        var response = await SendRawAsync(request);

        Assert.StartsWith("HTTP/1.1 400 ", response, StringComparison.Ordinal);
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_malformed_chunked_body_gets_400_and_the_agent_keeps_serving()
    {
        var response = await SendRawAsync($"POST /exec HTTP/1.1\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", response, StringComparison.Ordinal);
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Fact(Timeout = Timeout)]
    public async Task Huge_headers_get_400_and_the_agent_keeps_serving()
    {
        var response = await SendRawAsync($"GET /health HTTP/1.1\r\nX-Big: {new string('a', 64 * 1024)}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", response, StringComparison.Ordinal);
        Assert.Equal("ok", (await fixture.Client.HealthAsync(Ct)).Status);
    }

    [Theory(Timeout = Timeout)]
    [InlineData("{not json")]
    [InlineData("{\"cmd\":[]}")]
    [InlineData("{\"cmd\":\"ls\"}")]
    [InlineData("{\"cmd\":[\"ls\"],\"timeoutMs\":-1}")]
    [InlineData("{\"cmd\":[\"ls\"],\"env\":{\"A=B\":\"c\"}}")]
    public async Task A_bad_exec_body_gets_400_and_the_connection_stays_usable(string json)
    {
        var request = $"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}";
        var responses = await SendRawAsync(request + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", responses, StringComparison.Ordinal);
        Assert.Contains("BAD_REQUEST", responses, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 200 OK", responses, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_bad_exec_body_through_the_client_is_a_bad_request()
    {
        var e = await Assert.ThrowsAsync<AgentException>(() => fixture.Client.ExecAsync(new ExecRequest([]), null, null, Ct));

        Assert.Equal(AgentErrorReason.BadRequest, e.Reason);
    }

    [Fact(Timeout = Timeout)]
    public async Task Keep_alive_serves_several_requests_on_one_connection()
    {
        var response = await SendRawAsync("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.Equal(3, CountOf(response, "HTTP/1.1 200 OK"));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_chunked_exec_body_is_accepted_and_the_answer_is_chunked_frames()
    {
        var json = "{\"cmd\":[\"echo\",\"chunky\"]}";
        var body = $"{5:X}\r\n{json[..5]}\r\n{json.Length - 5:X};ext=1\r\n{json[5..]}\r\n0\r\nTrailer: x\r\n\r\n";
        var response = await SendRawAsync($"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}");

        Assert.StartsWith("HTTP/1.1 200 OK", response, StringComparison.Ordinal);
        Assert.Contains("Content-Type: application/vnd.vmsan.frames", response, StringComparison.Ordinal);
        Assert.Contains("Transfer-Encoding: chunked", response, StringComparison.Ordinal);
        Assert.Contains("chunky\n", response, StringComparison.Ordinal);
        Assert.Contains("\"exitCode\":0", response, StringComparison.Ordinal);
        Assert.EndsWith("0\r\n\r\n", response, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_started_frame_of_POST_exec_carries_the_pid_and_no_exec_id()
    {
        var json = "{\"cmd\":[\"true\"]}";
        var response = await SendRawAsync($"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nContent-Length: {json.Length}\r\nConnection: close\r\n\r\n{json}");

        Assert.Matches("\\{\"pid\":[1-9][0-9]*,\"id\":null,\"tty\":false\\}", response);
        Assert.EndsWith("0\r\n\r\n", response, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Expect_100_continue_is_honoured()
    {
        var json = "{\"cmd\":[\"true\"]}";
        var response = await SendRawAsync($"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nExpect: 100-continue\r\nContent-Length: {json.Length}\r\nConnection: close\r\n\r\n{json}");

        Assert.StartsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", response, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Unknown_paths_get_404_and_wrong_methods_405()
    {
        var notFound = await SendRawAsync("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        var wrongMethod = await SendRawAsync("GET /exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 404 ", notFound, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 405 ", wrongMethod, StringComparison.Ordinal);
        Assert.Contains("Allow: POST", wrongMethod, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task An_oversized_body_gets_413()
    {
        var response = await SendRawAsync($"POST /exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {fixture.Agent.Token}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 413 ", response, StringComparison.Ordinal);
    }

    private async Task<string> SendRawAsync(string request)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", fixture.Agent.Port, Ct);
        await socket.SendAsync(Encoding.Latin1.GetBytes(request), Ct);
        using var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            // Keep-alive: the agent leaves the connection open; what arrived so far is the answer.
        }

        return Encoding.Latin1.GetString(received.ToArray());
    }

    private static string Body(string response) => response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];

    private static int CountOf(string text, string part)
    {
        var count = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>Finds a port nothing listens on.</summary>
    private sealed class TcpListenerProbe : IDisposable
    {
        public TcpListenerProbe()
        {
            var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            FreePort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
        }

        public int FreePort { get; }

        public void Dispose()
        {
        }
    }
}
