using Wire = Vmsan.Agent.Protocol;

namespace Vmsan;

/// <summary>A command to run in a VM (<see cref="VmsanClient.ExecAsync"/>, <see cref="VmsanClient.OpenExecAsync"/>).</summary>
/// <param name="Cmd">Program and arguments; the program is searched in the guest's <c>PATH</c> unless it contains a slash.</param>
/// <param name="Env">Variables added to (or overriding) the default environment.</param>
/// <param name="Cwd">Working directory; <c>/</c> when null or empty.</param>
/// <param name="User">User to run as: a name, <c>uid</c> or <c>uid:gid</c>; null for the default user (<c>user</c> when the
/// guest has it, else root).</param>
/// <param name="TimeoutMs">When positive, the process group is killed after this many milliseconds (exit code 124).</param>
/// <param name="Stdin">Streaming calls: the process reads what <see cref="ExecStream.WriteStdinAsync"/> sends (else /dev/null).</param>
/// <param name="Tty">Streaming calls: run on a new PTY (stdout carries the terminal's output; no stderr).</param>
/// <param name="Cols">Initial terminal width for a TTY.</param>
/// <param name="Rows">Initial terminal height for a TTY.</param>
/// <param name="Detach">The exec survives its viewers disconnecting and keeps its output in a ring buffer.</param>
/// <param name="Session">A named session: reattached when one with that name runs, else created (implies <paramref name="Detach"/>).</param>
public sealed record ExecRequest(
    IReadOnlyList<string> Cmd,
    IReadOnlyDictionary<string, string>? Env = null,
    string? Cwd = null,
    string? User = null,
    long TimeoutMs = 0,
    bool Stdin = false,
    bool Tty = false,
    int Cols = 0,
    int Rows = 0,
    bool Detach = false,
    string? Session = null)
{
    // The wire type is the agent protocol's; this one is the library's, so the protocol can change without
    // breaking callers (and callers never need the protocol assembly).
    internal Wire.ExecRequest ToWire() => new(Cmd, Env, Cwd, User, TimeoutMs, Stdin, Tty, Cols, Rows, Detach, Session);
}

/// <summary>How an exec ended.</summary>
/// <param name="ExitCode">The exit status; 128+signal when killed by a signal; 124 when it timed out; 126/127 when it could not start.</param>
/// <param name="Signal">The signal that killed the process, if any.</param>
/// <param name="TimedOut">True when the agent killed it at its timeout.</param>
/// <param name="Pid">The guest pid, or null when the command could not be started.</param>
public sealed record ExecResult(int ExitCode, int? Signal, bool TimedOut, int? Pid)
{
    internal static ExecResult From(Agent.Client.ExecResult r) => new(r.ExitCode, r.Signal, r.TimedOut, r.Pid);
}

/// <summary>One exec or session of a VM, as <c>vmsan ps</c> lists it.</summary>
/// <param name="Id">The exec id (<c>e-</c> and 8 hex digits).</param>
/// <param name="Pid">Its process id (and process group id) in the guest.</param>
/// <param name="Cmd">The command.</param>
/// <param name="State"><c>running</c> or <c>exited</c>.</param>
/// <param name="ExitCode">Once exited: the exit code (128+signal when killed, 124 on timeout).</param>
/// <param name="Signal">Once exited: the killing signal, if any.</param>
/// <param name="StartedAt">When it started (UTC).</param>
/// <param name="Tty">Whether it runs on a PTY.</param>
/// <param name="Detached">Whether it survives its viewers disconnecting.</param>
/// <param name="Session">The session name, if any.</param>
/// <param name="User">The user it runs as.</param>
/// <param name="Viewers">How many clients are attached now.</param>
public sealed record ExecInfo(string Id, int Pid, IReadOnlyList<string> Cmd, string State, int? ExitCode, int? Signal,
    DateTimeOffset StartedAt, bool Tty, bool Detached, string? Session, string User, int Viewers)
{
    internal static ExecInfo From(Wire.ExecInfo e) =>
        new(e.Id, e.Pid, e.Cmd, e.State, e.ExitCode, e.Signal, e.StartedAt, e.Tty, e.Detached, e.Session, e.User, e.Viewers);
}

/// <summary>What a file transfer moved.</summary>
/// <param name="Files">Regular files.</param>
/// <param name="Directories">Directories.</param>
/// <param name="Symlinks">Symbolic links.</param>
/// <param name="Bytes">Bytes of file content.</param>
public sealed record TransferSummary(long Files, long Directories, long Symlinks, long Bytes)
{
    internal static TransferSummary From(Agent.Protocol.Files.TransferSummary s) => new(s.Files, s.Directories, s.Symlinks, s.Bytes);
}
