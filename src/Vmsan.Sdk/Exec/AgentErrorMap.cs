using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Core.Errors;

namespace Vmsan;

/// <summary>
/// The one table from agent failures to vmsan error codes: every SDK call that reaches the agent goes through it,
/// so callers (the CLI included) only ever see <see cref="VmsanException"/>.
/// </summary>
internal static class AgentErrorMap
{
    public static VmsanException ToVmsan(AgentException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        // HttpClient wraps what the connect callback threw (NamespaceSocket's AGENT_UNREACHABLE or
        // VM_NOT_RUNNING) in an HttpRequestException: that typed error is the real answer.
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is VmsanException typed)
                return typed;
        }
        if (ex.Reason == AgentErrorReason.Unreachable)
            return new VmsanException(ErrorCode.AgentUnreachable, ex.Message,
                "The VM may still be booting or its agent has stopped; check `vmsan list` and `vmsan logs ID`.", ex);
        if (ex.Code == AgentErrorCodes.UserNotFound)
            return new VmsanException(ErrorCode.UserNotFound, ex.Message,
                "Pass a user that exists in the guest's /etc/passwd (or a numeric uid), or leave --user out.", ex);
        return new VmsanException(ErrorCode.AgentError, ex.Message, "Check the VM with `vmsan list` and `vmsan logs ID`.", ex);
    }
}
