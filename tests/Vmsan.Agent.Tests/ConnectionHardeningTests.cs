using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Vmsan.Agent.Tests;

/// <summary>
/// Issue 11: guest code must not lock the host out of its own VM. Each test starts a host-mode agent with small limits
/// (the guest's PID 1 agent takes the same code path, with the host's gateway address as the only allowed peer).
/// </summary>
public sealed class ConnectionHardeningTests
{
    private const int Timeout = 60_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<Socket> ConnectAsync(int port, IPAddress? from = null)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (from is not null)
        {
            s.Bind(new IPEndPoint(from, 0));
        }

        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), Ct);
        return s;
    }

    /// <summary>True when the agent closed the connection (EOF or reset) within <paramref name="within"/>.</summary>
    private static async Task<bool> ClosedWithinAsync(Socket s, TimeSpan within)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(within);
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                if (await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            return false;
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_request_head_sent_a_byte_at_a_time_is_cut_at_the_total_head_deadline()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_AGENT_HEAD_TIMEOUT_MS"] = "2000" });
        using var s = await ConnectAsync(agent.Port);
        var head = Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + new string('a', 200));
        var clock = Stopwatch.StartNew();

        // One byte every 200 ms: each read is quick, the head never ends.
        var closed = false;
        foreach (var b in head)
        {
            try
            {
                await s.SendAsync(new[] { b }, SocketFlags.None, Ct);
            }
            catch (SocketException)
            {
                closed = true;
                break;
            }

            if (s.Poll(0, SelectMode.SelectRead))
            {
                closed = await ClosedWithinAsync(s, TimeSpan.FromSeconds(1));
                break;
            }

            await Task.Delay(200, Ct);
            if (clock.Elapsed > TimeSpan.FromSeconds(8))
            {
                break;
            }
        }

        Assert.True(closed, $"the connection was still open after {clock.Elapsed.TotalSeconds:0.0} s of a dripping head");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"closed only after {clock.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_connection_that_never_sends_a_request_is_closed_at_the_head_deadline()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_AGENT_HEAD_TIMEOUT_MS"] = "1500" });
        using var s = await ConnectAsync(agent.Port);

        Assert.True(await ClosedWithinAsync(s, TimeSpan.FromSeconds(6)), "an idle new connection stayed open");
    }

    [Fact(Timeout = Timeout)]
    public async Task At_the_connection_cap_idle_connections_make_room_and_the_host_is_still_served()
    {
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_AGENT_MAX_CONNECTIONS"] = "20" });
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < 60; i++)
            {
                idle.Add(await ConnectAsync(agent.Port));
            }

            using var client = agent.CreateClient();
            var clock = Stopwatch.StartNew();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            cts.CancelAfter(TimeSpan.FromSeconds(10));
            var health = await client.HealthAsync(cts.Token);

            Assert.Equal("ok", health.Status);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"health took {clock.Elapsed.TotalSeconds:0.0} s");
            var open = 0;
            foreach (var s in idle)
            {
                if (!await ClosedWithinAsync(s, TimeSpan.FromMilliseconds(50)))
                {
                    open++;
                }
            }

            Assert.True(open <= 20, $"{open} idle connections still open with a cap of 20");
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task Only_the_allowed_peer_is_served()
    {
        // The guest's agent allows only the host's gateway address; here 127.0.0.2 stands in for it.
        await using var agent = await AgentProcess.StartAsync(new Dictionary<string, string> { ["VMSAN_AGENT_ALLOWED_PEER"] = "127.0.0.2" });

        // The agent may reset the stranger's connection before its connect() or send() has returned: refused too.
        Socket? stranger = null;
        try
        {
            stranger = await ConnectAsync(agent.Port, IPAddress.Loopback);
            await stranger.SendAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), SocketFlags.None, Ct);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
        }

        using var host = await ConnectAsync(agent.Port, IPAddress.Parse("127.0.0.2"));
        await host.SendAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), SocketFlags.None, Ct);
        var answer = new byte[4096];
        var n = await host.ReceiveAsync(answer, SocketFlags.None, Ct);

        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(answer, 0, n), StringComparison.Ordinal);
        var strangerBytes = 0;
        try
        {
            if (stranger is not null)
                strangerBytes = await stranger.ReceiveAsync(answer, SocketFlags.None, Ct);
        }
        catch (SocketException)
        {
        }
        finally
        {
            stranger?.Dispose();
        }

        Assert.Equal(0, strangerBytes);
    }
}
