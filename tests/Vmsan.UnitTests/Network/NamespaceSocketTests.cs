using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Vmsan.Core.Errors;
using Vmsan.Network;
using Xunit;

namespace Vmsan.UnitTests.Network;

public sealed class NamespaceSocketTests
{
    [Fact(Timeout = 30_000)]
    public async Task A_missing_namespace_means_the_vm_is_not_running()
    {
        NetnsWorld.SkipUnlessRoot();

        var ex = await Assert.ThrowsAsync<VmsanException>(() =>
            NamespaceSocket.ConnectAsync($"vmsan-{NetnsWorld.RandomHex(8)}", new IPEndPoint(VmNetworkPlan.GuestAddress, 9119), TestContext.Current.CancellationToken));

        Assert.Equal(ErrorCode.VmNotRunning, ex.Code);
    }

    [Fact]
    public async Task A_namespace_name_with_a_slash_is_rejected()
    {
        var ex = await Assert.ThrowsAsync<VmsanException>(() =>
            NamespaceSocket.ConnectAsync("../../proc/1/ns/net", new IPEndPoint(IPAddress.Loopback, 1), TestContext.Current.CancellationToken));

        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_refused_connection_means_the_agent_is_unreachable()
    {
        await using var world = await NetnsWorld.CreateAsync();
        // A port nobody listens on, in a namespace of this test: the refusal comes from its own lo.
        using var probe = await NamespaceSocket.CreateAsync(world.HostNs, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp, TestContext.Current.CancellationToken);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var unused = (IPEndPoint)probe.LocalEndPoint!;
        probe.Dispose();

        var ex = await Assert.ThrowsAsync<VmsanException>(() => NamespaceSocket.ConnectAsync(world.HostNs, unused, TestContext.Current.CancellationToken));

        Assert.Equal(ErrorCode.AgentUnreachable, ex.Code);
    }

    [Fact(Timeout = 30_000)]
    public async Task Sockets_are_created_in_the_namespace_not_in_the_process_namespace()
    {
        await using var world = await NetnsWorld.CreateAsync();
        // 127.0.0.1 exists in every namespace: only the namespace decides which server answers.
        using var server = await NetnsWorld.StartEchoServerAsync(world.HostNs, IPAddress.Loopback);
        using var socket = await NamespaceSocket.ConnectAsync(world.HostNs, server.EndPoint, TestContext.Current.CancellationToken);

        Assert.Equal("ping", await VmNetworkManagerTests.EchoAsync(socket, "ping"));
        using var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(() => outside.ConnectAsync(server.EndPoint, TestContext.Current.CancellationToken).AsTask());
    }

    [Fact(Timeout = 30_000)]
    public async Task An_http_client_can_talk_through_the_connect_callback()
    {
        await using var world = await NetnsWorld.CreateAsync();
        using var listener = await NamespaceSocket.CreateAsync(world.HostNs, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp, TestContext.Current.CancellationToken);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var serve = Task.Run(async () =>
        {
            using var c = await listener.AcceptAsync(TestContext.Current.CancellationToken);
            var buffer = new byte[4096];
            var request = "";
            while (!request.Contains("\r\n\r\n", StringComparison.Ordinal))
                request += System.Text.Encoding.ASCII.GetString(buffer, 0, await c.ReceiveAsync(buffer, TestContext.Current.CancellationToken));
            await c.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"u8.ToArray(), TestContext.Current.CancellationToken);
        }, TestContext.Current.CancellationToken);
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = NamespaceSocket.HttpConnectCallback(world.HostNs, (IPEndPoint)listener.LocalEndPoint!),
        };
        using var http = new HttpClient(handler);

        var body = await http.GetStringAsync("http://agent/health", TestContext.Current.CancellationToken);

        Assert.Equal("ok", body);
        await serve;
    }
}
