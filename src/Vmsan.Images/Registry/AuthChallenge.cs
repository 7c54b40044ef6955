namespace Vmsan.Images.Registry;

/// <summary>A parsed <c>WWW-Authenticate</c> header: <c>Bearer realm="…",service="…",scope="…"</c> or <c>Basic realm="…"</c>.</summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? this[string name] => Parameters.TryGetValue(name, out var v) ? v : null;

    public static AuthChallenge? Parse(string? header)
    {
        if (string.IsNullOrWhiteSpace(header))
            return null;
        var h = header.Trim();
        var sp = h.IndexOf(' ', StringComparison.Ordinal);
        var scheme = sp < 0 ? h : h[..sp];
        var ps = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = sp < 0 ? h.Length : sp + 1;
        while (i < h.Length)
        {
            while (i < h.Length && (h[i] == ' ' || h[i] == ','))
                i++;
            var eq = h.IndexOf('=', i);
            if (eq < 0)
                break;
            var name = h[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < h.Length && h[i] == '"')
            {
                var sb = new System.Text.StringBuilder();
                i++;
                while (i < h.Length && h[i] != '"')
                {
                    if (h[i] == '\\' && i + 1 < h.Length)
                        i++;
                    sb.Append(h[i]);
                    i++;
                }
                i++; // closing quote
                value = sb.ToString();
            }
            else
            {
                var end = h.IndexOf(',', i);
                if (end < 0)
                    end = h.Length;
                value = h[i..end].Trim();
                i = end;
            }
            if (name.Length > 0)
                ps[name] = value;
        }
        return new AuthChallenge(scheme, ps);
    }
}
