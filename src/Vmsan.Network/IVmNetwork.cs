using System.Net;

namespace Vmsan.Network;

/// <summary>What a VM's network looks like once set up.</summary>
public sealed record VmNetworkInfo(VmNetworkPlan Plan, IPAddress? GuestDns)
{
    public string NetnsName => Plan.NetnsName;
}

/// <summary>Something of a VM's network left on the host although its VM is gone.</summary>
public sealed record LeakedNetworkResource(LeakedNetworkKind Kind, string Name, string VmId);

public enum LeakedNetworkKind
{
    /// <summary>A <c>vmsan-&lt;8 hex&gt;</c> network namespace.</summary>
    Namespace,

    /// <summary>A <c>vsn-&lt;8 hex&gt;</c> veth end in the namespace vmsan runs in.</summary>
    HostLink,
}

/// <summary>Creates and removes the per-VM network (namespace, veth pair, TAP, NAT).</summary>
public interface IVmNetwork
{
    /// <summary>
    /// Creates (or completes, when a previous attempt left part of it) the network of <paramref name="vmId"/>
    /// in <paramref name="slot"/>. On failure removes what this call created and throws
    /// <see cref="Core.Errors.ErrorCode.NetworkSetupFailed"/>.
    /// </summary>
    Task<VmNetworkInfo> SetupAsync(string vmId, int slot, CancellationToken ct = default);

    /// <summary>
    /// The same, with <paramref name="policy"/> in force before the guest's TAP exists;
    /// <paramref name="guestDns"/> is the resolver the guest is given.
    /// </summary>
    Task<VmNetworkInfo> SetupAsync(string vmId, int slot, Policy.NetworkPolicy policy, IPAddress? guestDns, CancellationToken ct = default);

    /// <summary>Puts <paramref name="policy"/> in force in a running VM's namespace (one transaction; the old policy stays on failure).</summary>
    Task ApplyPolicyAsync(string vmId, string netns, Policy.NetworkPolicy policy, IPAddress? guestDns, bool flushPins, CancellationToken ct = default);

    /// <summary>Packets refused so far, per refusal counter.</summary>
    Task<IReadOnlyDictionary<string, long>> RefusalCountersAsync(string netns, CancellationToken ct = default);

    /// <summary>Deletes the VM's conntrack entries to destinations <paramref name="policy"/> denies; returns how many.</summary>
    Task<int> CutDeniedConnectionsAsync(string netns, Policy.NetworkPolicy policy, CancellationToken ct = default);

    /// <summary>Removes the network of <paramref name="vmId"/>; succeeds when it is already gone.</summary>
    Task TeardownAsync(string vmId, CancellationToken ct = default);

    /// <summary>
    /// vmsan namespaces and host links whose VM is not in <paramref name="liveVmIds"/> (for <c>vmsan doctor</c>;
    /// <see cref="TeardownAsync"/> of <see cref="LeakedNetworkResource.VmId"/> removes them).
    /// </summary>
    Task<IReadOnlyList<LeakedNetworkResource>> ListLeakedAsync(IReadOnlySet<string> liveVmIds, CancellationToken ct = default);

    /// <summary>The resolver guests should use (see <see cref="HostResolver"/>), or null.</summary>
    IPAddress? GuestResolver();
}
