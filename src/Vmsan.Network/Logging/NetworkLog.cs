using System.Text;
using System.Text.Json;

namespace Vmsan.Network.Logging;

/// <summary>One event of a VM's network log (<c>network.log</c>, JSON lines).</summary>
/// <param name="Kind"><c>dns</c> (the filter), <c>proxy</c> (the pinning proxy), <c>refused</c> (nftables), <c>suppressed</c> (rate limit).</param>
/// <param name="Action">answered, refused, dropped, closed, …</param>
public sealed record NetworkEvent(
    DateTimeOffset Time, string Kind, string Action, string? Name = null, string? Type = null,
    string? Dst = null, IReadOnlyList<string>? Answer = null, string? Rule = null, long? Count = null);

/// <summary>
/// Appends a VM's network events as JSON lines, rate-limited (a guest that floods refusals must not
/// fill the disk): a burst of <see cref="Burst"/>, then <see cref="PerSecond"/> a second; what is left
/// out is counted in a <c>suppressed</c> line. Written with Utf8JsonWriter, no reflection.
/// </summary>
public sealed class NetworkLog : IDisposable
{
    public const string FileName = "network.log";
    public const int Burst = 200;
    public const int PerSecond = 50;
    private const long MaxBytes = 16 << 20;

    private readonly Lock _lock = new();
    private readonly FileStream? _file;
    private readonly Func<DateTimeOffset> _now;
    private double _tokens = Burst;
    private DateTimeOffset _last;
    private long _suppressed;

    /// <param name="path">The file to append to; null for a log that only counts (tests, no VM dir).</param>
    public NetworkLog(string? path, Func<DateTimeOffset>? now = null)
    {
        _now = now ?? (() => DateTimeOffset.UtcNow);
        _last = _now();
        if (path is not null)
            _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
    }

    /// <summary>Events written (not suppressed) since start, by kind.</summary>
    public long Written { get; private set; }

    public void Append(NetworkEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        lock (_lock)
        {
            var now = _now();
            _tokens = Math.Min(Burst, _tokens + (now - _last).TotalSeconds * PerSecond);
            _last = now;
            if (_tokens < 1 || (_file is not null && _file.Length > MaxBytes))
            {
                _suppressed++;
                return;
            }
            _tokens -= 1;
            if (_suppressed > 0)
            {
                Write(new NetworkEvent(now, "suppressed", "suppressed", Count: _suppressed));
                _suppressed = 0;
            }
            Write(e);
        }
    }

    private void Write(NetworkEvent e)
    {
        Written++;
        if (_file is null)
            return;
        var line = Serialize(e);
        _file.Write(line);
        _file.Flush();
    }

    public static byte[] Serialize(NetworkEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("time", e.Time.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("kind", e.Kind);
            w.WriteString("action", e.Action);
            if (e.Name is not null)
                w.WriteString("name", e.Name);
            if (e.Type is not null)
                w.WriteString("type", e.Type);
            if (e.Dst is not null)
                w.WriteString("dst", e.Dst);
            if (e.Answer is not null)
            {
                w.WriteStartArray("answer");
                foreach (var a in e.Answer)
                    w.WriteStringValue(a);
                w.WriteEndArray();
            }
            if (e.Rule is not null)
                w.WriteString("rule", e.Rule);
            if (e.Count is { } c)
                w.WriteNumber("count", c);
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    /// <summary>Reads a log back; lines that do not parse (a write cut by a crash) are skipped.</summary>
    public static List<NetworkEvent> Read(string path)
    {
        var events = new List<NetworkEvent>();
        if (!File.Exists(path))
            return events;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(fs, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                string? S(string k) => r.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                events.Add(new NetworkEvent(
                    DateTimeOffset.Parse(S("time") ?? "", System.Globalization.CultureInfo.InvariantCulture),
                    S("kind") ?? "?", S("action") ?? "?", S("name"), S("type"), S("dst"),
                    r.TryGetProperty("answer", out var a) && a.ValueKind == JsonValueKind.Array
                        ? [.. a.EnumerateArray().Select(x => x.GetString() ?? "")] : null,
                    S("rule"),
                    r.TryGetProperty("count", out var c) && c.TryGetInt64(out var n) ? n : null));
            }
            catch (Exception ex) when (ex is JsonException or FormatException)
            {
            }
        }
        return events;
    }

    /// <summary>One human line: time, kind/action, destination or name, answer, rule.</summary>
    public static string Format(NetworkEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var sb = new StringBuilder();
        sb.Append(e.Time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture));
        sb.Append(' ').Append(e.Kind).Append(' ').Append(e.Action);
        if (e.Name is not null)
            sb.Append(' ').Append(e.Name);
        if (e.Type is not null)
            sb.Append(' ').Append(e.Type);
        if (e.Dst is not null)
            sb.Append(" dst=").Append(e.Dst);
        if (e.Answer is { Count: > 0 })
            sb.Append(" answer=").Append(string.Join(',', e.Answer));
        if (e.Rule is not null)
            sb.Append(" rule=").Append(e.Rule);
        if (e.Count is { } c)
            sb.Append(" count=").Append(c);
        return sb.ToString();
    }

    public void Dispose() => _file?.Dispose();
}
