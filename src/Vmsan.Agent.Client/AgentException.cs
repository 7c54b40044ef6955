namespace Vmsan.Agent.Client;

/// <summary>Why a call to the agent failed.</summary>
internal enum AgentErrorReason
{
    /// <summary>The agent could not be reached (connection refused or reset, no route, VM not up yet).</summary>
    Unreachable,

    /// <summary>No token was sent (HTTP 401).</summary>
    Unauthorized,

    /// <summary>The token was rejected (HTTP 403).</summary>
    Forbidden,

    /// <summary>The agent rejected the request as malformed (HTTP 400/413).</summary>
    BadRequest,

    /// <summary>The agent refused the operation with an error code (see <see cref="AgentException.Code"/>), e.g. <c>USER_NOT_FOUND</c>.</summary>
    Rejected,

    /// <summary>The agent answered something that does not follow the protocol, or the stream broke mid-response.</summary>
    Protocol,

    /// <summary>The agent did not become healthy in time.</summary>
    Timeout,
}

/// <summary>The one table from an agent's HTTP status to a failure reason (plain calls and WebSocket upgrades).</summary>
internal static class AgentStatus
{
    /// <summary>0 = no HTTP answer at all. 404/409/429 are refusals only when the agent said why (a code).</summary>
    public static AgentErrorReason ReasonFor(int status, string? code) => status switch
    {
        0 => AgentErrorReason.Unreachable,
        401 => AgentErrorReason.Unauthorized,
        403 => AgentErrorReason.Forbidden,
        400 or 413 => AgentErrorReason.BadRequest,
        404 or 409 or 429 when code is not null => AgentErrorReason.Rejected,
        _ => AgentErrorReason.Protocol,
    };

    /// <summary>The code the agent sends with a status, for answers whose body is not read (WebSocket upgrades).</summary>
    public static string? CodeFor(int status) => status switch
    {
        401 => Protocol.AgentErrorCodes.Unauthorized,
        403 => Protocol.AgentErrorCodes.Forbidden,
        404 => Protocol.AgentErrorCodes.ExecNotFound,
        409 => Protocol.AgentErrorCodes.ExecExited,
        429 => Protocol.AgentErrorCodes.LimitReached,
        _ => null,
    };
}

/// <summary>A call to the in-guest agent failed for a known reason.</summary>
internal sealed class AgentException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AgentException(AgentErrorReason reason, string message, string? code = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
        Code = code;
    }

    /// <summary>The failure class.</summary>
    public AgentErrorReason Reason { get; }

    /// <summary>The agent's error code (<see cref="Protocol.AgentErrorCodes"/>) when it sent one.</summary>
    public string? Code { get; }
}
