using Vmsan.Agent.Client;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Output;

/// <summary>The CLI's one table from agent failures to vmsan error codes.</summary>
public static class AgentErrorMap
{
    public static VmsanException ToVmsan(AgentException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return new VmsanException(ErrorCode.AgentError, ex.Message, "Check the VM with `vmsan list` and `vmsan logs ID`.");
    }
}
