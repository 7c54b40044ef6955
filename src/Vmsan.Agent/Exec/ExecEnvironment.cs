using Vmsan.Agent.Users;

namespace Vmsan.Agent.Exec;

/// <summary>A clean environment for a child: nothing from the agent's own (the token never leaks).</summary>
internal static class ExecEnvironment
{
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>PATH, HOME, USER, LOGNAME, SHELL for <paramref name="user"/> (TERM too on a TTY), then the request's.</summary>
    public static Dictionary<string, string> Build(UserAccount user, IReadOnlyDictionary<string, string>? requested, bool tty)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = DefaultPath,
            ["HOME"] = user.Home,
            ["USER"] = user.Name,
            ["LOGNAME"] = user.Name,
            ["SHELL"] = user.Shell,
        };
        if (tty)
        {
            env["TERM"] = "xterm-256color";
        }

        if (requested is not null)
        {
            foreach (var (key, value) in requested)
            {
                env[key] = value;
            }
        }

        return env;
    }
}
