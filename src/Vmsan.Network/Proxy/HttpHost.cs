using System.Text;

namespace Vmsan.Network.Proxy;

/// <summary>
/// Finds the host a plain HTTP/1.x request names: the Host header, which must appear exactly once
/// and agree with an absolute-form target. CONNECT is refused (it asks the server to go elsewhere).
/// </summary>
public static class HttpHost
{
    public const int MaxHead = 16 * 1024;

    private static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PRI"];

    /// <summary>True when <paramref name="data"/> starts (or could start) with an HTTP method and a space.</summary>
    public static bool LooksLikeHttp(ReadOnlySpan<byte> data, out bool needMore)
    {
        needMore = false;
        var s = SkipEmptyLines(data);
        foreach (var m in Methods)
        {
            var n = Math.Min(s.Length, m.Length + 1);
            var want = Encoding.ASCII.GetBytes(m + " ");
            if (s[..n].SequenceEqual(want.AsSpan(0, n)))
            {
                if (n < want.Length)
                    needMore = true;
                else
                    return true;
            }
        }
        return false;
    }

    // Servers skip empty lines before a request line (RFC 9112 §2.2), so must we.
    private static ReadOnlySpan<byte> SkipEmptyLines(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0 && data[0] is (byte)'\r' or (byte)'\n')
            data = data[1..];
        return data;
    }

    public static PeekResult Parse(ReadOnlySpan<byte> data)
    {
        if (!LooksLikeHttp(data, out var more))
            return new(more ? PeekStatus.NeedMore : PeekStatus.NotThisProtocol, null);
        var s = SkipEmptyLines(data);
        var end = s.IndexOf("\r\n\r\n"u8);
        var endLf = s.IndexOf("\n\n"u8);
        if (end < 0 || (endLf >= 0 && endLf < end))
            end = endLf;
        if (end < 0)
            return s.Length > MaxHead ? new(PeekStatus.Invalid, null, "request head too long") : new(PeekStatus.NeedMore, null);
        var head = Encoding.Latin1.GetString(s[..end]);
        var lines = head.Split('\n');
        var request = lines[0].TrimEnd('\r').Split(' ');
        if (request.Length != 3 || !request[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
            return new(PeekStatus.Invalid, null, "bad request line");
        if (request[0] is "CONNECT" or "PRI")
            return new(PeekStatus.Invalid, null, request[0] + " refused");
        string? host = null;
        foreach (var raw in lines.Skip(1))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length > 0 && line[0] is ' ' or '\t')
                return new(PeekStatus.Invalid, null, "folded header");
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
                return new(PeekStatus.Invalid, null, "bad header line");
            var key = line[..colon];
            if (key.Trim().Length != key.Length)
                return new(PeekStatus.Invalid, null, "space in a header name");
            if (!key.Equals("host", StringComparison.OrdinalIgnoreCase))
                continue;
            if (host is not null)
                return new(PeekStatus.Invalid, null, "several Host headers");
            host = line[(colon + 1)..].Trim(' ', '\t');
        }
        if (host is null)
            return new(PeekStatus.Invalid, null, "no Host header");
        var name = NameOf(host);
        if (name is null)
            return new(PeekStatus.Invalid, null, "Host is not a host name");
        var target = request[1];
        if (!target.StartsWith('/') && target != "*")
        {
            // Absolute form: its authority is what a proxy-aware server would use; it must agree.
            var scheme = target.IndexOf("://", StringComparison.Ordinal);
            if (scheme < 0)
                return new(PeekStatus.Invalid, null, "bad request target");
            var rest = target[(scheme + 3)..];
            var slash = rest.IndexOfAny(['/', '?', '#']);
            var authority = slash < 0 ? rest : rest[..slash];
            if (NameOf(authority) != name)
                return new(PeekStatus.Invalid, null, "request target names another host");
        }
        return new(PeekStatus.Complete, name);
    }

    /// <summary>host[:port] → the lower-cased host name, or null (IP literals, userinfo, junk).</summary>
    private static string? NameOf(string authority)
    {
        if (authority.Contains('@', StringComparison.Ordinal) || authority.StartsWith('['))
            return null;
        var colon = authority.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!ushort.TryParse(authority.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
                return null;
            authority = authority[..colon];
        }
        return ClientHello.HostName(Encoding.ASCII.GetBytes(authority));
    }
}
