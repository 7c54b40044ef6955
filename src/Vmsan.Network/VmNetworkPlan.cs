using System.Net;
using Vmsan.Core.Errors;

namespace Vmsan.Network;

/// <summary>
/// The names and addresses of one VM's network, derived from its id and slot (docs/internals.md,
/// "Network (per VM)"). Pure: computing a plan touches nothing.
/// </summary>
public sealed record VmNetworkPlan
{
    /// <summary>Slots are 0…16383: 16384 /30 subnets fill 10.231.0.0/16.</summary>
    public const int MaxSlot = 16383;

    public const string NetnsPrefix = "vmsan-";
    public const string HostLinkPrefix = "vsn-";
    public const string VmIdPrefix = "vm-";

    /// <summary>The namespace end of the veth pair, inside the VM's namespace.</summary>
    public const string NamespaceLink = "eth0";

    /// <summary>The TAP device the VMM opens (QEMU <c>ifname=tap0</c>), inside the VM's namespace.</summary>
    public const string TapName = "tap0";

    /// <summary>Prefix length of both the veth /30 and the TAP /30.</summary>
    public const int PrefixLength = 30;

    /// <summary>All veth pairs live in this prefix; the host NATs it.</summary>
    public const string TransitPrefix = "10.231.0.0/16";

    /// <summary>tap0's address inside every VM namespace: the guest's gateway.</summary>
    public static readonly IPAddress GatewayAddress = IPAddress.Parse(Agent.Protocol.GuestNetwork.GatewayAddress);

    /// <summary>Every guest has this address; its namespace isolates it.</summary>
    public static readonly IPAddress GuestAddress = IPAddress.Parse(Agent.Protocol.GuestNetwork.GuestAddress);

    /// <summary>The guest NIC's MAC (locally administered); the namespace has a permanent neighbour entry for it.</summary>
    public const string GuestMac = Agent.Protocol.GuestNetwork.GuestMac;

    /// <summary>
    /// The namespace side of tap0 has a fixed MAC too: a snapshot clone resumes with the gateway's MAC in its ARP
    /// cache, and a TAP with a different (random) MAC would drop every frame the guest sends it.
    /// </summary>
    public const string GatewayMac = "06:00:ac:1e:00:01";

    private VmNetworkPlan(string vmId, int slot, string suffix)
    {
        VmId = vmId;
        Slot = slot;
        Suffix = suffix;
        var baseAddress = (10u << 24) | (231u << 16) | ((uint)slot * 4);
        HostAddress = ToAddress(baseAddress + 1);
        NamespaceAddress = ToAddress(baseAddress + 2);
    }

    public string VmId { get; }

    public int Slot { get; }

    /// <summary>The 8 hex digits of the id, shared by every name below.</summary>
    public string Suffix { get; }

    /// <summary><c>vmsan-&lt;8 hex&gt;</c>.</summary>
    public string NetnsName => NetnsPrefix + Suffix;

    /// <summary><c>vsn-&lt;8 hex&gt;</c>: the veth end that stays in the namespace vmsan runs in.</summary>
    public string HostLink => HostLinkPrefix + Suffix;

    /// <summary><c>10.231.0.0 + 4·slot + 1</c>: host end of the veth, the namespace's default gateway.</summary>
    public IPAddress HostAddress { get; }

    /// <summary><c>10.231.0.0 + 4·slot + 2</c>: <c>eth0</c> inside the namespace.</summary>
    public IPAddress NamespaceAddress { get; }

    public string HostCidr => $"{HostAddress}/{PrefixLength}";

    public string NamespaceCidr => $"{NamespaceAddress}/{PrefixLength}";

    public static string GatewayCidr => $"{GatewayAddress}/{PrefixLength}";

    /// <summary>The guest's own address with its prefix, e.g. for <c>VMSAN_IP</c>.</summary>
    public static string GuestCidr => $"{GuestAddress}/{PrefixLength}";

    /// <summary>Plans the network of <paramref name="vmId"/> (<c>vm-&lt;8 hex&gt;</c>) in <paramref name="slot"/>.</summary>
    /// <exception cref="VmsanException"><see cref="ErrorCode.InvalidArgument"/> for a bad id or slot.</exception>
    public static VmNetworkPlan For(string vmId, int slot)
    {
        var suffix = SuffixOf(vmId);
        if (slot is < 0 or > MaxSlot)
            throw VmsanException.Invalid($"Network slot {slot} is out of range 0…{MaxSlot}.");
        return new VmNetworkPlan(vmId, slot, suffix);
    }

    /// <summary>The 8 hex digits of a VM id; throws <see cref="ErrorCode.InvalidArgument"/> if it is not <c>vm-&lt;8 hex&gt;</c>.</summary>
    public static string SuffixOf(string vmId)
    {
        ArgumentNullException.ThrowIfNull(vmId);
        if (!vmId.StartsWith(VmIdPrefix, StringComparison.Ordinal) || !IsSuffix(vmId.AsSpan(VmIdPrefix.Length)))
            throw VmsanException.Invalid($"'{vmId}' is not a VM id (vm- followed by 8 lowercase hex digits).",
                "Run `vmsan list` to see the ids of existing VMs.");
        return vmId[VmIdPrefix.Length..];
    }

    /// <summary>The netns name of a VM, without a slot.</summary>
    public static string NetnsNameOf(string vmId) => NetnsPrefix + SuffixOf(vmId);

    /// <summary>The host-side veth name of a VM, without a slot.</summary>
    public static string HostLinkOf(string vmId) => HostLinkPrefix + SuffixOf(vmId);

    /// <summary>The VM id a vmsan netns or host link name belongs to; null for names vmsan does not make.</summary>
    public static string? VmIdFromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var prefix in (ReadOnlySpan<string>)[NetnsPrefix, HostLinkPrefix])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal) && IsSuffix(name.AsSpan(prefix.Length)))
                return VmIdPrefix + name[prefix.Length..];
        }
        return null;
    }

    private static bool IsSuffix(ReadOnlySpan<char> s)
    {
        if (s.Length != 8)
            return false;
        foreach (var c in s)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
                return false;
        }
        return true;
    }

    private static IPAddress ToAddress(uint value) =>
        new([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
}
