using System.Text.Json.Serialization;

namespace Vmsan.Agent.Protocol;

/// <summary>Body of <c>POST /exec</c>.</summary>
/// <param name="Cmd">Program and arguments; the program is searched in the child's <c>PATH</c> unless it contains a slash.</param>
/// <param name="Env">Variables added to (or overriding) the default environment.</param>
/// <param name="Cwd">Working directory; <c>/</c> when null or empty.</param>
/// <param name="User">User to run as: a name, <c>uid</c> or <c>uid:gid</c> (or <c>name:group</c>); null or empty for the
/// default user (<c>user</c> when the guest's /etc/passwd has it, else root).</param>
/// <param name="TimeoutMs">When positive, the process group is killed after this many milliseconds (exit code 124).</param>
/// <param name="Stdin">Streaming calls: the process reads stdin frames (else /dev/null).</param>
/// <param name="Tty">Streaming calls: run on a new PTY (stdout carries the terminal's output; no stderr).</param>
/// <param name="Cols">Initial terminal width for a TTY.</param>
/// <param name="Rows">Initial terminal height for a TTY.</param>
/// <param name="Detach">The exec survives its viewers disconnecting and keeps its output in a ring buffer.</param>
/// <param name="Session">A named session: reattached when one with that name runs, else created (implies Detach).</param>
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
    string? Session = null);

/// <summary>Payload of a <see cref="FrameType.Signal"/> frame.</summary>
/// <param name="Signal">The signal number (e.g. 2 for SIGINT).</param>
public sealed record ExecSignal(int Signal);

/// <summary>Payload of a <see cref="FrameType.Resize"/> frame.</summary>
/// <param name="Cols">Columns.</param>
/// <param name="Rows">Rows.</param>
public sealed record ExecResize(int Cols, int Rows);

/// <summary>Body of <c>POST /execs/signal</c>.</summary>
/// <param name="Id">Exec id or session name.</param>
/// <param name="Signal">The signal number.</param>
public sealed record ExecSignalRequest(string Id, int Signal);

/// <summary>One exec or session as listed by <c>GET /execs</c>.</summary>
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
    DateTimeOffset StartedAt, bool Tty, bool Detached, string? Session, string User, int Viewers);

/// <summary>Body of <c>GET /execs</c>.</summary>
/// <param name="Execs">Running execs, then exited detached ones still kept.</param>
public sealed record ExecList(IReadOnlyList<ExecInfo> Execs);

/// <summary>Payload of the <see cref="FrameType.Exit"/> frame.</summary>
/// <param name="ExitCode">The exit status, or 128+signal when killed by a signal, or 124 on timeout.</param>
/// <param name="Signal">The signal that killed the process, if any.</param>
/// <param name="TimedOut">True when the agent killed the process because its timeout expired.</param>
public sealed record ExecExit(int ExitCode, int? Signal, bool TimedOut);

/// <summary>An error reported by the agent, as a JSON body or an <see cref="FrameType.Error"/> frame.</summary>
/// <param name="Code">Stable code, one of <see cref="AgentErrorCodes"/>.</param>
/// <param name="Message">Human-readable explanation.</param>
public sealed record AgentError(string Code, string Message);

/// <summary>Payload of the <see cref="FrameType.Started"/> frame.</summary>
/// <param name="Pid">The process id in the guest (also its process group and session id).</param>
/// <param name="Id">The exec id on streaming calls (for attach, ps, kill).</param>
/// <param name="Tty">Whether the exec runs on a PTY.</param>
public sealed record ExecStarted(int Pid, string? Id = null, bool Tty = false);

/// <summary>
/// <c>POST /rekey</c> body, sent by the host once right after a snapshot clone resumes (authenticated with the
/// snapshot's token, which only the host holds).
/// </summary>
/// <param name="Token">The clone's own token; the snapshot's is refused from then on.</param>
/// <param name="Hostname">The clone's hostname (its VM id).</param>
/// <param name="Entropy">Base64 bytes mixed into the kernel's input pool (RNDADDENTROPY), then the CRNG is reseeded.</param>
/// <param name="UnixTimeNs">The host's wall clock; the guest's is behind by the time since the snapshot.</param>
/// <param name="NewMachine">
/// True for a clone (a new machine): the agent's exec and session tables start empty, so nothing the source started is
/// listed, attached or signalled by its old id (the processes themselves keep running). False when a persisted VM
/// resumes as itself.
/// </param>
public sealed record RekeyRequest(string Token, string Hostname, string Entropy, long UnixTimeNs, bool NewMachine = false);

/// <summary>Body of <c>GET /health</c>.</summary>
/// <param name="Status"><c>ok</c>.</param>
/// <param name="Version">The agent's version.</param>
/// <param name="Hostname">The guest's hostname (the VM id).</param>
/// <param name="UptimeMs">Milliseconds since the agent started.</param>
/// <param name="TimeNs">The guest's wall clock (Unix nanoseconds) when it answered: the host measures the offset from it.</param>
public sealed record HealthResponse(string Status, string Version, string Hostname, long UptimeMs, long? TimeNs = null);

/// <summary>Body of <c>POST /clock</c>: move the guest's wall clock by <paramref name="AdjustNs"/> (relative, so the request's own latency does not matter).</summary>
/// <param name="AdjustNs">Nanoseconds to add to CLOCK_REALTIME (negative: back).</param>
public sealed record ClockAdjustRequest(long AdjustNs);

/// <summary>Answer of <c>POST /clock</c>.</summary>
/// <param name="Applied">False when the agent does not own the clock (host mode).</param>
public sealed record ClockAdjustResponse(bool Applied);

/// <summary>Source-generated JSON metadata for every protocol type (camelCase, AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(ExecRequest))]
[JsonSerializable(typeof(ExecExit))]
[JsonSerializable(typeof(AgentError))]
[JsonSerializable(typeof(ExecStarted))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ClockAdjustRequest))]
[JsonSerializable(typeof(ClockAdjustResponse))]
[JsonSerializable(typeof(RekeyRequest))]
[JsonSerializable(typeof(ExecSignal))]
[JsonSerializable(typeof(ExecResize))]
[JsonSerializable(typeof(ExecSignalRequest))]
[JsonSerializable(typeof(ExecInfo))]
[JsonSerializable(typeof(ExecList))]
public sealed partial class AgentJsonContext : JsonSerializerContext;
