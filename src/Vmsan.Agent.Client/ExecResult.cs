namespace Vmsan.Agent.Client;

/// <summary>How an exec ended.</summary>
/// <param name="ExitCode">The exit status; 128+signal when killed by a signal; 124 when it timed out; 126/127 when it could not start.</param>
/// <param name="Signal">The signal that killed the process, if any.</param>
/// <param name="TimedOut">True when the agent killed it at its timeout.</param>
/// <param name="Pid">The guest pid, or null when the command could not be started.</param>
internal sealed record ExecResult(int ExitCode, int? Signal, bool TimedOut, int? Pid);
