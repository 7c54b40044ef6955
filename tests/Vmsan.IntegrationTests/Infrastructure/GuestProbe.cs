using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Vmsan.IntegrationTests.Infrastructure;

/// <summary>One line of a probe run inside a guest: what was tried and what the guest saw.</summary>
public sealed record ProbeResult(string Name, string Result, int Ms, string Detail);

/// <summary>
/// The hostile guest's tool: a static C program (guest-probe.c) that reads "NAME PROTO ADDR [PORT]"
/// lines and tries each (TCP connect, UDP send+receive, ICMP echo), printing open / refused /
/// timeout with the time it took. All probes of a table run in one exec.
/// </summary>
public static class GuestProbe
{
    private static readonly Lazy<Task<string>> Binary = new(async () =>
    {
        var src = Path.Combine(AppContext.BaseDirectory, "Infrastructure", "guest-probe.c");
        var dir = Directory.CreateTempSubdirectory("vmsan-guest-probe-").FullName;
        var bin = Path.Combine(dir, "probe");
        await Sh.Check($"gcc -static -O2 -o {bin} {src} 2>/dev/null || gcc -static -O2 -o {bin} {src}");
        return bin;
    });

    /// <summary>Uploads the probe to <c>/tmp/probe</c> in the guest.</summary>
    public static async Task InstallAsync(VmsanWorld w, string id)
    {
        var r = await w.Vmsan("upload", "-u", "root", id, await Binary.Value, "/tmp");
        Assert.True(r.ExitCode == 0, r.ToString());
        var c = await w.Vmsan("exec", "-u", "root", id, "--", "chmod", "755", "/tmp/probe");
        Assert.True(c.ExitCode == 0, c.ToString());
    }

    /// <summary>Runs every probe in one exec; returns the results by name.</summary>
    public static async Task<Dictionary<string, ProbeResult>> RunAsync(VmsanWorld w, string id, IEnumerable<(string Name, string Proto, string Address, int Port)> probes)
    {
        var input = string.Join("", probes.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Name} {p.Proto} {p.Address} {p.Port}\n")));
        // Root: the ICMP probe needs a raw socket (a hostile guest has root anyway).
        var r = await w.Vmsan("exec", "-u", "root", id, "--", "sh", "-c", $"printf '{input.Replace("\n", "\\n", StringComparison.Ordinal)}' | /tmp/probe");
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' '))
            .Where(f => f.Length == 4)
            .Select(f => new ProbeResult(f[0], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), f[3]))
            .ToDictionary(p => p.Name);
    }

    /// <summary>A TCP server that accepts and closes every connection until disposed (a target that would answer).</summary>
    public static async Task<Socket> TcpSinkAsync(string netns, IPAddress address, int port)
    {
        var s = await Vmsan.Network.NamespaceSocket.CreateAsync(netns, address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(address, port));
        s.Listen(64);
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                    (await s.AcceptAsync()).Dispose();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        });
        return s;
    }

    /// <summary>A TCP server that keeps every connection open and discards what it receives.</summary>
    public static async Task<Socket> TcpHoldAsync(string netns, IPAddress address, int port)
    {
        var s = await Vmsan.Network.NamespaceSocket.CreateAsync(netns, address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(address, port));
        s.Listen(64);
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var c = await s.AcceptAsync();
                    _ = Task.Run(async () =>
                    {
                        using (c)
                        {
                            var buf = new byte[4096];
                            try
                            {
                                while (await c.ReceiveAsync(buf) > 0)
                                {
                                }
                            }
                            catch (SocketException)
                            {
                            }
                        }
                    });
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        });
        return s;
    }

    /// <summary>A UDP echo server until disposed.</summary>
    public static async Task<Socket> UdpEchoAsync(string netns, IPAddress address, int port)
    {
        var s = await Vmsan.Network.NamespaceSocket.CreateAsync(netns, address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(address, port));
        _ = Task.Run(async () =>
        {
            var buf = new byte[1500];
            try
            {
                while (true)
                {
                    var r = await s.ReceiveFromAsync(buf, new IPEndPoint(IPAddress.Any, 0));
                    await s.SendToAsync(buf.AsMemory(0, r.ReceivedBytes), r.RemoteEndPoint);
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        });
        return s;
    }
}
