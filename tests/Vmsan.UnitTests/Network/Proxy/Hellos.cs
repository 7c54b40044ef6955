using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Vmsan.UnitTests.Network.Proxy;

/// <summary>ClientHellos for tests: real ones from SslStream (OpenSSL), and hand-built ones.</summary>
internal static class Hellos
{
    /// <summary>The first bytes a real TLS client sends for <paramref name="sni"/> (null: no SNI, as for an IP target).</summary>
    public static async Task<byte[]> RealAsync(string sni)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        var ssl = new SslStream(new NetworkStream(client, ownsSocket: false));
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = sni });
        var buf = new byte[65536];
        var got = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (got < 5 || got < 5 + ((buf[3] << 8) | buf[4]))
            got += await server.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, cts.Token);
        server.Close();
        try
        {
            await handshake;
        }
        catch (Exception)
        {
            // The handshake cannot finish: only its first flight was wanted.
        }
        ssl.Dispose();
        return buf[..got];
    }

    /// <summary>A ClientHello with the given extensions (type, body), cut into TLS records of at most <paramref name="recordSize"/> bytes.</summary>
    public static byte[] Build(IEnumerable<(ushort Type, byte[] Body)> extensions, int recordSize = 16384)
    {
        var body = new List<byte> { 3, 3 };
        body.AddRange(new byte[32]);
        body.Add(0);                         // session id
        body.AddRange([0, 2, 0x13, 0x01]);   // one cipher suite
        body.AddRange([1, 0]);               // null compression
        var ext = new List<byte>();
        foreach (var (t, b) in extensions)
        {
            ext.AddRange([(byte)(t >> 8), (byte)t, (byte)(b.Length >> 8), (byte)b.Length]);
            ext.AddRange(b);
        }
        body.AddRange([(byte)(ext.Count >> 8), (byte)ext.Count]);
        body.AddRange(ext);
        var hs = new List<byte> { 1, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count };
        hs.AddRange(body);
        var wire = new List<byte>();
        for (var i = 0; i < hs.Count; i += recordSize)
        {
            var n = Math.Min(recordSize, hs.Count - i);
            wire.AddRange([0x16, 3, 1, (byte)(n >> 8), (byte)n]);
            wire.AddRange(hs.GetRange(i, n));
        }
        return [.. wire];
    }

    public static (ushort, byte[]) Sni(params string[] names)
    {
        var list = new List<byte>();
        foreach (var n in names)
        {
            var b = System.Text.Encoding.ASCII.GetBytes(n);
            list.AddRange([0, (byte)(b.Length >> 8), (byte)b.Length]);
            list.AddRange(b);
        }
        return (0, [(byte)(list.Count >> 8), (byte)list.Count, .. list]);
    }
}
