using System.Net;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Core.Processes;
using Vmsan.Core.State;
using Vmsan.Network;

namespace Vmsan.Lifecycle;

/// <summary>How the host reaches a VM's agent: the guest address over a socket opened in the VM's network namespace.</summary>
internal static class VmAgent
{
    /// <summary>A new agent client for <paramref name="rec"/>'s VM with <paramref name="token"/> (the caller disposes it).</summary>
    public static AgentClient For(VmRecord rec, string token)
    {
        var endpoint = new IPEndPoint(IPAddress.Parse(rec.Network.GuestIp), AgentProtocol.Port);
        // Through the VMM's own namespace handle: /run/netns/NAME exists only in the mount
        // namespace of the supervisor that created it (they differ under `ip netns exec`).
        var netns = ProcessProbe.IsAlive(rec.Vmm) ? $"/proc/{rec.Vmm!.Pid}/ns/net" : rec.Network.Netns;
        return new AgentClient(NamespaceSocket.StreamFactory(netns, endpoint), token);
    }
}
