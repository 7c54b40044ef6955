using System.Net;
using System.Net.Sockets;
using System.Text;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan.UnitTests.Agent;

/// <summary>
/// The client's plain HTTP calls and its WebSocket upgrades must read an agent status the same
/// way: one table, checked over every error status against a server that answers it.
/// </summary>
public class AgentStatusTableTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The code the agent sends with each status it uses; any other status carries a made-up one.</summary>
    private static string CodeFor(int status) => status switch
    {
        401 => AgentErrorCodes.Unauthorized,
        403 => AgentErrorCodes.Forbidden,
        404 => AgentErrorCodes.ExecNotFound,
        409 => AgentErrorCodes.ExecExited,
        429 => AgentErrorCodes.LimitReached,
        _ => "SOMETHING",
    };

    private static AgentErrorReason Expected(int status) => status switch
    {
        401 => AgentErrorReason.Unauthorized,
        403 => AgentErrorReason.Forbidden,
        400 or 413 => AgentErrorReason.BadRequest,
        404 or 409 or 429 => AgentErrorReason.Rejected,
        _ => AgentErrorReason.Protocol,
    };

    [Fact]
    public async Task Every_error_status_maps_to_the_same_reason_over_http_and_over_a_websocket_upgrade()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var status = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                var head = new StringBuilder();
                var buf = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await stream.ReadAsync(buf, stop.Token);
                    if (n == 0)
                        break;
                    head.Append(Encoding.ASCII.GetString(buf, 0, n));
                }
                var body = $"{{\"code\":\"{CodeFor(status)}\",\"message\":\"status {status}\"}}";
                var reply = $"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(reply), stop.Token);
            }
        }, stop.Token);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var agent = AgentClient.ForTcp("127.0.0.1", port, "token");
        var disagreements = new List<string>();

        for (status = 400; status < 600; status++)
        {
            var http = await Assert.ThrowsAsync<AgentException>(() => agent.ListExecsAsync(Ct));
            var ws = await Assert.ThrowsAsync<AgentException>(() => agent.AttachExecAsync("e-00000001", Ct));
            if (http.Reason != Expected(status) || ws.Reason != Expected(status))
                disagreements.Add($"{status}: http {http.Reason}, websocket {ws.Reason}, expected {Expected(status)}");
            else if (Expected(status) is AgentErrorReason.Rejected or AgentErrorReason.Unauthorized or AgentErrorReason.Forbidden
                     && (http.Code != CodeFor(status) || ws.Code != CodeFor(status)))
                disagreements.Add($"{status}: code http {http.Code}, websocket {ws.Code}, expected {CodeFor(status)}");
        }

        await stop.CancelAsync();
        listener.Stop();
        // The fake server ends either by its accept being cancelled (an exception) or, when the cancel lands between
        // two connections, by its loop condition (no exception): how it ends is not what this test checks.
        _ = await Record.ExceptionAsync(() => server);
        Assert.Empty(disagreements);
    }
}
