namespace Vmsan.Agent.Init;

/// <summary>The per-VM settings the initramfs hands over in /run/vmsan/agent.env (KEY=VALUE lines).</summary>
internal sealed record GuestConfig(IReadOnlyDictionary<string, string> Values)
{
    public const string DefaultPath = "/run/vmsan/agent.env";

    public string? Id => Values.GetValueOrDefault(Protocol.GuestConfigKeys.Id);

    public string? Token => Values.GetValueOrDefault(Protocol.GuestConfigKeys.Token);

    public static GuestConfig Parse(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                values[line[..eq]] = line[(eq + 1)..];
            }
        }

        return new GuestConfig(values);
    }

    /// <summary>Reads then deletes the file: the token must not stay readable by guest processes.</summary>
    public static GuestConfig ReadAndDelete(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.Error($"cannot read {path}: {e.Message}; every authenticated call will be refused");
            return new GuestConfig(new Dictionary<string, string>());
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.Warn($"cannot delete {path}: {e.Message}");
        }

        return Parse(text);
    }
}
