using System.Globalization;

namespace Vmsan.Agent.Users;

/// <summary>A resolved account: who a process runs as.</summary>
internal sealed record UserAccount(string Name, uint Uid, uint Gid, IReadOnlyList<uint> Groups, string Home, string Shell);

/// <summary>The user spec names nobody in the guest's /etc/passwd or /etc/group.</summary>
internal sealed class UserNotFoundException(string message) : Exception(message);

/// <summary>
/// /etc/passwd and /etc/group parsed by hand: the static glibc has no NSS, and the guest's files are the truth
/// (read at every call, so users added by a previous exec are seen at once).
/// </summary>
internal sealed class UserDatabase(string passwdPath = "/etc/passwd", string groupPath = "/etc/group")
{
    /// <summary>The runtimes' unprivileged user, the default when the guest has it.</summary>
    public const string DefaultUser = "user";

    private static readonly UserAccount SyntheticRoot = new("root", 0, 0, [0], "/root", "/bin/sh");

    private sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home, string Shell);

    private sealed record GroupEntry(string Name, uint Gid, string[] Members);

    /// <summary>
    /// Resolves <paramref name="spec"/>: null/empty (the default user: <c>user</c> if present, else root), a name, a uid,
    /// or either followed by <c>:group</c> (a group name or gid).
    /// </summary>
    /// <exception cref="UserNotFoundException">The name or group is unknown.</exception>
    public UserAccount Resolve(string? spec)
    {
        var passwd = ReadPasswd();
        if (string.IsNullOrEmpty(spec))
        {
            return passwd.Find(p => p.Name == DefaultUser) is { } user ? Complete(user, null) : Root(passwd);
        }

        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? spec : spec[..colon];
        var groupPart = colon < 0 ? null : spec[(colon + 1)..];

        PasswdEntry entry;
        if (passwd.Find(p => p.Name == userPart) is { } byName)
        {
            entry = byName;
        }
        else if (uint.TryParse(userPart, NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
        {
            // A bare uid need not exist (like docker --user 1234): then home is / and the group is the uid.
            entry = passwd.Find(p => p.Uid == uid) ?? new PasswdEntry(userPart, uid, uid, "/", "/bin/sh");
        }
        else if (userPart == "root")
        {
            return Complete(new PasswdEntry("root", 0, 0, "/root", "/bin/sh"), groupPart);
        }
        else
        {
            throw new UserNotFoundException($"user '{userPart}' not found in /etc/passwd");
        }

        return Complete(entry, groupPart);
    }

    private UserAccount Root(List<PasswdEntry> passwd) =>
        passwd.Find(p => p.Uid == 0) is { } root ? Complete(root, null) : SyntheticRoot;

    private UserAccount Complete(PasswdEntry entry, string? groupPart)
    {
        var groups = ReadGroups();
        var gid = entry.Gid;
        if (!string.IsNullOrEmpty(groupPart))
        {
            if (groups.Find(g => g.Name == groupPart) is { } named)
            {
                gid = named.Gid;
            }
            else if (!uint.TryParse(groupPart, NumberStyles.None, CultureInfo.InvariantCulture, out gid))
            {
                throw new UserNotFoundException($"group '{groupPart}' not found in /etc/group");
            }
        }

        var supplementary = new List<uint> { gid };
        foreach (var group in groups)
        {
            if (Array.IndexOf(group.Members, entry.Name) >= 0 && !supplementary.Contains(group.Gid))
            {
                supplementary.Add(group.Gid);
            }
        }

        var shell = string.IsNullOrEmpty(entry.Shell) ? "/bin/sh" : entry.Shell;
        var home = string.IsNullOrEmpty(entry.Home) ? "/" : entry.Home;
        return new UserAccount(entry.Name, entry.Uid, gid, supplementary, home, shell);
    }

    private List<PasswdEntry> ReadPasswd()
    {
        var result = new List<PasswdEntry>();
        foreach (var fields in ReadLines(passwdPath))
        {
            // name:password:uid:gid:gecos:home:shell
            if (fields.Length >= 7 && fields[0].Length > 0
                && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
                && uint.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            {
                result.Add(new PasswdEntry(fields[0], uid, gid, fields[5], fields[6]));
            }
        }

        return result;
    }

    private List<GroupEntry> ReadGroups()
    {
        var result = new List<GroupEntry>();
        foreach (var fields in ReadLines(groupPath))
        {
            // name:password:gid:member,member
            if (fields.Length >= 4 && fields[0].Length > 0
                && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            {
                result.Add(new GroupEntry(fields[0], gid, fields[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
            }
        }

        return result;
    }

    private static IEnumerable<string[]> ReadLines(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /etc/passwd (a bare OCI image): only root and numeric ids resolve.
            yield break;
        }

        foreach (var line in lines)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            yield return line.Split(':');
        }
    }
}
