using System.Net;
using Vmsan.Network.Dns;

namespace Vmsan.UnitTests.Network.Dns;

/// <summary>Hand-made DNS messages for tests.</summary>
internal static class DnsWire
{
    public static DnsMessage Query(string name, ushort type = DnsType.A, ushort id = 0x1234, bool edns = false)
    {
        var m = new DnsMessage { Id = id, Flags = 0x0100 };
        m.Questions.Add(new DnsQuestion(name, type, 1));
        if (edns)
            m.Additional.Add(new DnsRecord("", DnsType.OPT, 4096, 0, []));
        return m;
    }

    public static DnsMessage Answer(DnsMessage q, params DnsRecord[] answers)
    {
        var r = DnsMessage.ReplyTo(q, DnsRcode.NoError);
        r.Answers.AddRange(answers);
        return r;
    }

    public static DnsRecord A(string name, string ip, uint ttl = 300) =>
        new(name, IPAddress.Parse(ip).AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? DnsType.A : DnsType.AAAA, 1, ttl, IPAddress.Parse(ip).GetAddressBytes());

    public static DnsRecord Cname(string name, string target, uint ttl = 300)
    {
        var w = new DnsMessage.ByteWriter();
        w.Name(target);
        return new DnsRecord(name, DnsType.CNAME, 1, ttl, w.ToArray());
    }

    /// <summary>HTTPS RDATA: priority 1, target ".", then (key, value) params in order.</summary>
    public static DnsRecord Https(string name, params (ushort Key, byte[] Value)[] ps)
    {
        var w = new DnsMessage.ByteWriter();
        w.U16(1);
        w.Name("");
        foreach (var (k, v) in ps)
        {
            w.U16(k);
            w.U16((ushort)v.Length);
            w.Bytes(v);
        }
        return new DnsRecord(name, DnsType.HTTPS, 1, 300, w.ToArray());
    }
}
