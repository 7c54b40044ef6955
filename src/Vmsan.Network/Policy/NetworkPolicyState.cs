using Vmsan.Core.State;

namespace Vmsan.Network.Policy;

/// <summary>A policy as the VM's state file stores it (<see cref="VmNetwork"/>), and back.</summary>
public static class NetworkPolicyState
{
    /// <summary>The policy stored in <paramref name="network"/> (validated again: a hand-edited state file cannot smuggle in a bad entry).</summary>
    public static NetworkPolicy PolicyOf(VmNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return NetworkPolicy.Create(network.Policy, network.AllowedDomains, network.AllowedCidrs, network.DeniedCidrs);
    }

    /// <summary><paramref name="network"/> with <paramref name="policy"/> stored in it.</summary>
    public static VmNetwork WithPolicy(this VmNetwork network, NetworkPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(policy);
        return network with
        {
            Policy = policy.ModeName,
            AllowedDomains = policy.AllowedDomains.Count > 0 ? [.. policy.AllowedDomains] : null,
            AllowedCidrs = policy.AllowedCidrs.Count > 0 ? [.. policy.AllowedCidrs.Select(c => c.ToString())] : null,
            DeniedCidrs = policy.DeniedCidrs.Count > 0 ? [.. policy.DeniedCidrs.Select(c => c.ToString())] : null,
        };
    }
}
