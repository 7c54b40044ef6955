namespace Vmsan.Agent.Exec;

/// <summary>
/// Finds the program like execvp would, but in the child's PATH (posix_spawnp searches the agent's own
/// PATH, which as PID 1 is unset), so "not found" (127) and "not executable" (126) are told apart up front.
/// </summary>
internal static class CommandResolver
{
    public readonly record struct Resolution(string? Path, int ExitCode, string? Error);

    public static Resolution Resolve(string command, string? pathVariable, string cwd)
    {
        if (command.Contains('/', StringComparison.Ordinal))
        {
            // Relative paths resolve in the child after its chdir.
            return new Resolution(command, 0, null);
        }

        var sawNonExecutable = false;
        foreach (var entry in (pathVariable ?? "").Split(':'))
        {
            var directory = entry.Length == 0 ? "." : entry;
            var candidate = directory.EndsWith('/') ? directory + command : directory + "/" + command;
            var absolute = candidate.StartsWith('/') ? candidate : System.IO.Path.Combine(cwd, candidate);
            if (!File.Exists(absolute))
            {
                continue;
            }

            if (Libc.Access(absolute, Libc.X_OK) == 0)
            {
                return new Resolution(absolute, 0, null);
            }

            sawNonExecutable = true;
        }

        return sawNonExecutable
            ? new Resolution(null, 126, $"{command}: Permission denied")
            : new Resolution(null, 127, $"{command}: command not found");
    }

    /// <summary>Maps a posix_spawn error to a shell-like exit code and message.</summary>
    public static (int ExitCode, string Message) FromSpawnError(string command, int errno) =>
        errno == Libc.ENOENT
            ? (127, $"{command}: {Libc.StrError(errno)}")
            : (126, $"{command}: {Libc.StrError(errno)}");
}
