using System.Globalization;

namespace Vmsan.Agent.Files;

/// <summary>One account of the guest's /etc/passwd.</summary>
internal sealed record PasswdEntry(string Name, int Uid, int Gid, string Home);

/// <summary>
/// Reads /etc/passwd by hand: the agent is a static glibc binary, where getpwnam would need NSS modules
/// that cannot be loaded. Read on every call (it is small, and images or users may change it).
/// </summary>
internal static class PasswdFile
{
    public static readonly PasswdEntry Root = new("root", 0, 0, "/root");

    public static PasswdEntry? Find(string path, string name)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return name == "root" ? Root : null;
        }

        foreach (var line in lines)
        {
            if (Parse(line) is { } entry && entry.Name == name)
            {
                return entry;
            }
        }

        return name == "root" ? Root : null;
    }

    /// <summary><c>name:password:uid:gid:gecos:home:shell</c>; null for comments and malformed lines.</summary>
    public static PasswdEntry? Parse(string line)
    {
        if (line.Length == 0 || line[0] == '#')
        {
            return null;
        }

        var fields = line.Split(':');
        if (fields.Length < 7 || fields[0].Length == 0
            || !int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
            || !int.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
        {
            return null;
        }

        return new PasswdEntry(fields[0], uid, gid, fields[5].Length == 0 ? "/" : fields[5]);
    }
}
