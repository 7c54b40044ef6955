using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Vmsan.Core.Processes;
using Vmsan.Network;
using Xunit;

namespace Vmsan.UnitTests.Network;

/// <summary>
/// A throwaway set of network namespaces for one test: a "host" namespace that stands in for the
/// machine vmsan runs on, optionally an "uplink" standing in for the internet. Everything the
/// test creates is named uniquely and deleted by name on dispose; the machine's own namespace is
/// never touched (every command names its namespace with -n or netns exec).
/// </summary>
internal sealed class NetnsWorld : IAsyncDisposable
{
    /// <summary>Test-owned addresses, used only inside this world's namespaces.</summary>
    public static readonly IPAddress UplinkServer = IPAddress.Parse("198.18.0.1");
    public static readonly IPAddress HostUplinkAddress = IPAddress.Parse("198.18.255.1");

    private readonly List<string> _owned = [];

    private NetnsWorld(string id)
    {
        Id = id;
        HostNs = $"vt-{id}-host";
    }

    public string Id { get; }

    public string HostNs { get; }

    public string? UplinkNs { get; private set; }

    public VmNetworkManager Manager(ICommandRunner? runner = null) => new(runner ?? CommandRunner.Instance, HostNs);

    public static void SkipUnlessRoot() =>
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "needs root to create network namespaces");

    public static async Task<NetnsWorld> CreateAsync()
    {
        SkipUnlessRoot();
        var world = new NetnsWorld(RandomHex(6));
        try
        {
            await world.AddNetnsAsync(world.HostNs);
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }
        return world;
    }

    /// <summary>A fresh VM id whose namespace this world deletes on dispose.</summary>
    public string NewVmId()
    {
        var id = "vm-" + RandomHex(8);
        lock (_owned)
            _owned.Add(VmNetworkPlan.NetnsNameOf(id));
        // Marked as another home's (vmsan's ownership marker, /run/vmsan/owners/ID holds the owning VMSAN_HOME): a
        // `vmsan doctor` running anywhere on the machine meanwhile would otherwise take this unclaimed namespace for
        // a leak and delete it under the test ("expected 1 vsn- link, got 0").
        Directory.CreateDirectory(OwnersDir);
        File.WriteAllText(Path.Combine(OwnersDir, id), $"/nonexistent/vmsan-unit-test-{Id}");
        lock (_owned)
            _markers.Add(Path.Combine(OwnersDir, id));
        return id;
    }

    private const string OwnersDir = "/run/vmsan/owners";

    private readonly List<string> _markers = [];

    /// <summary>Creates a namespace owned by this world, with lo up.</summary>
    public async Task<string> AddNetnsAsync(string name)
    {
        lock (_owned)
            _owned.Add(name);
        await Sh.RunAsync("ip", "netns", "add", name);
        await Sh.RunAsync("ip", "-n", name, "link", "set", "lo", "up");
        return name;
    }

    /// <summary>
    /// host --(198.18.255.1/30 ↔ .2/30)-- uplink, host's default route via the uplink, and
    /// 198.18.0.1 on the uplink's lo. The uplink has no route back to 10.231.0.0/16 or anything
    /// behind it: only masqueraded traffic can get answers.
    /// </summary>
    public async Task AddUplinkAsync()
    {
        UplinkNs = await AddNetnsAsync($"vt-{Id}-up");
        await Sh.RunAsync("ip", "-n", HostNs, "link", "add", $"vtu-{Id}", "type", "veth", "peer", "name", "up0", "netns", UplinkNs);
        await Sh.BatchAsync(HostNs, $"address add {HostUplinkAddress}/30 dev vtu-{Id}", $"link set vtu-{Id} up",
            "route add default via 198.18.255.2");
        await Sh.BatchAsync(UplinkNs, "address add 198.18.255.2/30 dev up0", "link set up0 up",
            $"address add {UplinkServer}/32 dev lo");
    }

    /// <summary>A TCP echo server in <paramref name="netns"/> that reports each client's address.</summary>
    public static async Task<EchoServer> StartEchoServerAsync(string netns, IPAddress address)
    {
        var listener = await NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        listener.Listen();
        return new EchoServer(listener);
    }

    public static bool NetnsExists(string name) => File.Exists($"/run/netns/{name}");

    public async ValueTask DisposeAsync()
    {
        string[] owned;
        lock (_owned)
            owned = [.. _owned];
        // VM namespaces first (their veth ends live in the host namespace), the host last.
        for (var i = owned.Length - 1; i >= 0; i--)
            await CommandRunner.Instance.RunAsync("ip", ["netns", "delete", owned[i]]);
        lock (_owned)
            foreach (var marker in _markers)
                File.Delete(marker);
    }

    public static string RandomHex(int digits) => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes((digits + 1) / 2))[..digits];
}

internal sealed class EchoServer : IDisposable
{
    private readonly Socket _listener;
    private readonly Task _loop;

    public EchoServer(Socket listener)
    {
        _listener = listener;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _loop = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The address each accepted client came from, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<IPEndPoint> Clients { get; } = new();

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptAsync();
                Clients.Enqueue((IPEndPoint)client.RemoteEndPoint!);
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        var buffer = new byte[4096];
                        int n;
                        while ((n = await client.ReceiveAsync(buffer)) > 0)
                            await client.SendAsync(buffer.AsMemory(0, n));
                    }
                });
            }
        }
        catch (Exception) when (_listener.SafeHandle.IsClosed)
        {
            // Disposed.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}

internal static class Sh
{
    public static async Task<string> RunAsync(params string[] args)
    {
        var r = await CommandRunner.Instance.RunAsync(args[0], args[1..]);
        Assert.True(r.Ok, $"`{string.Join(' ', args)}` failed ({r.ExitCode}): {r.Stderr}");
        return r.Stdout;
    }

    public static async Task BatchAsync(string netns, params string[] commands)
    {
        var r = await CommandRunner.Instance.RunAsync("ip", ["-n", netns, "-batch", "-"], string.Join('\n', commands) + "\n");
        Assert.True(r.Ok, $"ip -n {netns} batch failed ({r.ExitCode}): {r.Stderr}");
    }

    public static Task<string> InNetnsAsync(string netns, params string[] args) => RunAsync(["ip", "netns", "exec", netns, .. args]);
}
