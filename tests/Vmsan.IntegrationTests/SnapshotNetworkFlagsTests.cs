using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// <c>create --snapshot</c> with network flags, on one allow-all source that publishes a port and one snapshot of it
/// (one cold boot, one clone): the clone's <c>--network-policy deny-all</c> refuses the uplink server the source
/// reaches, its <c>-p</c> publishes a new port to the guest server it inherited from the source's memory, the
/// source's port (re-applied, or given again) is PORT_IN_USE, and size flags are INVALID_ARGUMENT, each before
/// anything is created.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class SnapshotNetworkFlagsTests(SnapshotNetworkFlagsTests.Vms vms) : IClassFixture<SnapshotNetworkFlagsTests.Vms>
{
    private const int UplinkTcp = 7101;
    private const int GuestServer = 7200;
    private const int SourcePort = 18300;
    private const int ClonePort = 18301;

    public sealed class Vms : IAsyncLifetime
    {
        private Socket? _sink;

        public VmsanWorld World { get; } = new();
        public string Source { get; private set; } = "";
        public string Clone { get; set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            _sink = await GuestProbe.TcpSinkAsync(World.UplinkNs, IPAddress.Parse(VmsanWorld.UplinkAddress), UplinkTcp);
            Source = await World.CreateVm("-p", $"{SourcePort}:{GuestServer}");
            await GuestProbe.InstallAsync(World, Source);
            // The guest server runs in the source's memory, so every clone has it running too.
            var serve = await World.Vmsan("exec", "-d", "-u", "root", Source, "--", "/tmp/probe", "serve", GuestServer.ToString(CultureInfo.InvariantCulture));
            Assert.True(serve.ExitCode == 0, serve.ToString());
            Assert.Equal("hello-from-guest", await ReadBanner(World.HostNs, VmsanWorld.HostAddress, SourcePort, retryForSeconds: 30));
            var snap = await World.Vmsan("snapshot", "create", Source, "--name", "nf", "--json");
            Assert.True(snap.ExitCode == 0, snap.ToString());
        }

        public async ValueTask DisposeAsync()
        {
            _sink?.Dispose();
            await World.DisposeAsync();
        }
    }

    private VmsanWorld W => vms.World;

    private static string ErrorCode(ProcResult r)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        return JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString()!;
    }

    private async Task<List<string>> Ids() =>
        (await W.VmsanJson("list")).EnumerateArray().Select(v => v.GetProperty("id").GetString()!).ToList();

    private async Task<string> UplinkProbe(string id) =>
        (await GuestProbe.RunAsync(W, id, [("uplink", "tcp", VmsanWorld.UplinkAddress, UplinkTcp)]))["uplink"].Result;

    [Fact]
    public async Task The_allow_all_source_reaches_the_uplink_server()
    {
        Assert.Equal("open", await UplinkProbe(vms.Source));
    }

    [Fact]
    public async Task A_deny_all_clone_with_its_own_port_cannot_reach_the_uplink_and_serves_the_new_port()
    {
        var clone = await W.VmsanJson("create", "--snapshot", "nf", "--network-policy", "deny-all", "-p", $"{ClonePort}:{GuestServer}");
        vms.Clone = clone.GetProperty("id").GetString()!;
        Assert.Equal("deny-all", clone.GetProperty("networkPolicy").GetString());
        Assert.Equal([$"{ClonePort}:{GuestServer}/tcp"], clone.GetProperty("publishedPorts").EnumerateArray().Select(p => p.GetString()!).ToArray());

        Assert.Equal("refused", await UplinkProbe(vms.Clone));
        // The clone's own port reaches the server it resumed with; the source still serves its port and still
        // reaches the uplink (the clone's policy is its own namespace's).
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, VmsanWorld.HostAddress, ClonePort, retryForSeconds: 30));
        Assert.Equal("hello-from-guest", await ReadBanner(W.HostNs, VmsanWorld.HostAddress, SourcePort));
        Assert.Equal("open", await UplinkProbe(vms.Source));
        var stored = await W.VmsanJson("network", vms.Clone);
        Assert.Equal("deny-all", stored.GetProperty("policy").GetString());
    }

    [Fact]
    public async Task The_sources_port_re_applied_or_given_again_is_port_in_use_before_anything_is_created()
    {
        var before = await Ids();
        // Without -p a clone takes the source's ports, which the running source holds.
        var inherited = await W.Vmsan("create", "--snapshot", "nf", "--json");
        Assert.Equal("PORT_IN_USE", ErrorCode(inherited));
        Assert.Contains($"{SourcePort}", inherited.Stdout, StringComparison.Ordinal);
        var again = await W.Vmsan("create", "--snapshot", "nf", "--network-policy", "deny-all", "-p", $"{SourcePort}:{GuestServer}", "--json");
        Assert.Equal("PORT_IN_USE", ErrorCode(again));
        // The clone's port is taken too.
        var clones = await W.Vmsan("create", "--snapshot", "nf", "-p", $"{ClonePort}:80", "--json");
        Assert.Equal("PORT_IN_USE", ErrorCode(clones));
        Assert.Equal(before, await Ids());
        Assert.Empty(Directory.GetDirectories(Path.Combine(W.Home, "vms")).Select(Path.GetFileName).Except(before));
    }

    [Fact]
    public async Task Size_flags_with_snapshot_are_invalid_argument_before_anything_is_created()
    {
        var before = await Ids();
        foreach (var flags in (string[][])[["--memory", "512"], ["--vcpus", "2"], ["--disk", "8G"], ["--runtime", "base"]])
        {
            var r = await W.Vmsan(["create", "--snapshot", "nf", "-p", "18399:80", .. flags, "--json"]);
            Assert.Equal("INVALID_ARGUMENT", ErrorCode(r));
            Assert.Contains(flags[0], r.Stdout, StringComparison.Ordinal);
        }
        Assert.Equal(before, await Ids());
    }

    /// <summary>The first line a TCP server at ADDR:PORT sends, seen from <paramref name="netns"/>; null when the connection fails.</summary>
    private static async Task<string?> ReadBanner(string netns, string address, int port, int retryForSeconds = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(retryForSeconds);
        while (true)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                using var s = await Vmsan.Network.NamespaceSocket.CreateAsync(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(address), port), cts.Token);
                var buf = new byte[64];
                var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
                var text = System.Text.Encoding.ASCII.GetString(buf, 0, n).Trim();
                if (text.Length > 0 || DateTime.UtcNow >= deadline)
                    return text.Length > 0 ? text : null;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                if (DateTime.UtcNow >= deadline)
                    return null;
            }
            await Task.Delay(300);
        }
    }
}
