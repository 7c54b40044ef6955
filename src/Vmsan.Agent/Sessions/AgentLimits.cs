namespace Vmsan.Agent.Sessions;

/// <summary>Bounds on what clients may make the agent hold (beyond the HTTP ones in <see cref="Http.HttpLimits"/>).</summary>
internal sealed record AgentLimits
{
    /// <summary>Processes started through the API and running at once (POST /exec, streams, detached, sessions).</summary>
    public int MaxExecs { get; init; } = 64;

    /// <summary>Running named sessions.</summary>
    public int MaxSessions { get; init; } = 16;

    /// <summary>Clients attached to one exec at once.</summary>
    public int MaxViewers { get; init; } = 8;

    /// <summary>Output kept per stream (stdout, stderr) of a detached exec or session for replay on attach.</summary>
    public int RingBytesPerStream { get; init; } = 1024 * 1024;

    /// <summary>Exited detached execs kept for ps/attach; the oldest go first.</summary>
    public int KeepExited { get; init; } = 32;
}
