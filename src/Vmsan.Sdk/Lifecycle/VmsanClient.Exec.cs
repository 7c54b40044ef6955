using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;

namespace Vmsan;

public sealed partial class VmsanClient
{
    /// <summary>Runs a command in the VM, streaming its output; returns its exit status.</summary>
    public async Task<ExecResult> ExecAsync(string id, ExecRequest request, Stream? stdout, Stream? stderr, CancellationToken ct = default)
    {
        using var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await agent.ExecAsync(request, stdout, stderr, ct).ConfigureAwait(false);
    }
}
