namespace Vmsan.Agent.Client;

/// <summary>Why a call to the agent failed.</summary>
public enum AgentErrorReason
{
    /// <summary>The agent could not be reached (connection refused or reset, no route, VM not up yet).</summary>
    Unreachable,

    /// <summary>No token was sent (HTTP 401).</summary>
    Unauthorized,

    /// <summary>The token was rejected (HTTP 403).</summary>
    Forbidden,

    /// <summary>The agent rejected the request as malformed (HTTP 400/413).</summary>
    BadRequest,

    /// <summary>The agent refused the operation with an error code (see <see cref="AgentException.Code"/>), e.g. <c>USER_UNSUPPORTED</c>.</summary>
    Rejected,

    /// <summary>The agent answered something that does not follow the protocol, or the stream broke mid-response.</summary>
    Protocol,

    /// <summary>The agent did not become healthy in time.</summary>
    Timeout,
}

/// <summary>A call to the in-guest agent failed for a known reason.</summary>
public sealed class AgentException : Exception
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
