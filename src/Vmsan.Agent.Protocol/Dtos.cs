using System.Text.Json.Serialization;

namespace Vmsan.Agent.Protocol;

/// <summary>Body of <c>POST /exec</c>.</summary>
/// <param name="Cmd">Program and arguments; the program is searched in the child's <c>PATH</c> unless it contains a slash.</param>
/// <param name="Env">Variables added to (or overriding) the default environment.</param>
/// <param name="Cwd">Working directory; <c>/</c> when null or empty.</param>
/// <param name="User">User to run as; null, empty or <c>root</c> for root (the only one supported for now).</param>
/// <param name="TimeoutMs">When positive, the process group is killed after this many milliseconds (exit code 124).</param>
public sealed record ExecRequest(
    IReadOnlyList<string> Cmd,
    IReadOnlyDictionary<string, string>? Env = null,
    string? Cwd = null,
    string? User = null,
    long TimeoutMs = 0);

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
public sealed record ExecStarted(int Pid);

/// <summary>Body of <c>GET /health</c>.</summary>
/// <param name="Status"><c>ok</c>.</param>
/// <param name="Version">The agent's version.</param>
/// <param name="Hostname">The guest's hostname (the VM id).</param>
/// <param name="UptimeMs">Milliseconds since the agent started.</param>
public sealed record HealthResponse(string Status, string Version, string Hostname, long UptimeMs);

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
public sealed partial class AgentJsonContext : JsonSerializerContext;
