namespace Vmsan.Agent.Protocol;

/// <summary>
/// The guest's side of every VM's network, defined once: the host (Vmsan.Network, the SDK) and the agent both read
/// these. Every VM has the same addresses; its own network namespace keeps them apart.
/// </summary>
public static class GuestNetwork
{
    /// <summary>The guest's address (eth0).</summary>
    public const string GuestAddress = "172.30.0.2";

    /// <summary>tap0's address in the VM's namespace: the guest's gateway, DNS filter and the only peer the agent serves.</summary>
    public const string GatewayAddress = "172.30.0.1";

    /// <summary>Prefix length of the guest link.</summary>
    public const int PrefixLength = 30;

    /// <summary>The guest NIC's MAC (locally administered); the namespace has a permanent neighbour entry for it.</summary>
    public const string GuestMac = "06:00:ac:1e:00:02";
}

/// <summary>
/// Keys of the per-VM config the host appends to the initramfs (<c>/vmsan/config</c>, <c>KEY=VALUE</c> lines) and the
/// guest's init and agent read (docs/internals.md).
/// </summary>
public static class GuestConfigKeys
{
    /// <summary>The VM id (the guest's hostname).</summary>
    public const string Id = "VMSAN_ID";

    /// <summary>The bearer token every agent call but health needs.</summary>
    public const string Token = "VMSAN_TOKEN";

    /// <summary>The guest's address with prefix (<c>172.30.0.2/30</c>).</summary>
    public const string Ip = "VMSAN_IP";

    /// <summary>The gateway address.</summary>
    public const string Gateway = "VMSAN_GW";

    /// <summary>The resolver for /etc/resolv.conf (may be empty).</summary>
    public const string Dns = "VMSAN_DNS";

    /// <summary>eth0's MTU.</summary>
    public const string Mtu = "VMSAN_MTU";
}
