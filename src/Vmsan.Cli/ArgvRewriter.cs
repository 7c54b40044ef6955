namespace Vmsan.Cli;

/// <summary>
/// <c>vmsan exec ID ls -la</c> must run <c>ls -la</c>: everything after the VM id (exec) or after
/// the options (run) is the command, even when it looks like an option. The parser only knows
/// that after <c>--</c>, so we insert one where the command starts. (The reference CLI lost
/// <c>-la</c> here.)
/// </summary>
public static class ArgvRewriter
{
    /// <summary>Options of each verb that take a value, so their value is not mistaken for the id or command.</summary>
    private static readonly Dictionary<string, HashSet<string>> ValueOptions = new(StringComparer.Ordinal)
    {
        ["exec"] = ["-e", "--env", "-w", "--workdir", "--cwd", "-u", "--user", "--timeout"],
        ["run"] = ["--vmm", "--vcpus", "--cpus", "--memory", "-m", "--disk", "--runtime", "--kernel", "--rootfs", "--accel", "-e", "--env", "-w", "--workdir", "--cwd", "-u", "--user", "--timeout",
                  "--network-policy", "--allowed-domain", "--allowed-cidr", "--denied-cidr", "--publish-port", "-p",
                  "--from-image", "--platform", "--registry-user", "--on-timeout", "--exec-timeout"],
    };

    public static string[] Rewrite(string[] args)
    {
        // Find the verb: the first token that is not a global flag.
        var i = 0;
        while (i < args.Length && args[i] is "--json" or "--verbose" or "-v")
            i++;
        if (i >= args.Length || !ValueOptions.TryGetValue(args[i], out var valueOpts))
            return args;
        var verb = args[i];
        // `exec attach ID EXEC_ID` is a subcommand, not a command named attach.
        if (verb == "exec" && i + 1 < args.Length && args[i + 1] == "attach")
            return args;
        var positionalsBeforeCommand = verb == "exec" ? 1 : 0;
        var j = i + 1;
        var seen = 0;
        while (j < args.Length)
        {
            var a = args[j];
            if (a == "--")
                return args;
            if (a.StartsWith('-') && a.Length > 1)
            {
                if (valueOpts.Contains(a))
                    j++;
                j++;
                continue;
            }
            if (seen == positionalsBeforeCommand)
                break;
            seen++;
            j++;
        }
        if (j >= args.Length)
            return args;
        return [.. args[..j], "--", .. args[j..]];
    }
}
