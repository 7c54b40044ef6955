using System.Net;
using Vmsan.Core.Errors;
using Vmsan.Network;
using Xunit;

namespace Vmsan.UnitTests.Network;

public sealed class VmNetworkPlanTests
{
    [Fact]
    public void Slot_0_uses_the_first_subnet()
    {
        var plan = VmNetworkPlan.For("vm-1a2b3c4d", 0);

        Assert.Equal("vmsan-1a2b3c4d", plan.NetnsName);
        Assert.Equal("vsn-1a2b3c4d", plan.HostLink);
        Assert.Equal(IPAddress.Parse("10.231.0.1"), plan.HostAddress);
        Assert.Equal(IPAddress.Parse("10.231.0.2"), plan.NamespaceAddress);
        Assert.Equal("10.231.0.1/30", plan.HostCidr);
        Assert.Equal("10.231.0.2/30", plan.NamespaceCidr);
    }

    [Fact]
    public void Slot_1_uses_the_next_slash_30()
    {
        var plan = VmNetworkPlan.For("vm-1a2b3c4d", 1);

        Assert.Equal(IPAddress.Parse("10.231.0.5"), plan.HostAddress);
        Assert.Equal(IPAddress.Parse("10.231.0.6"), plan.NamespaceAddress);
    }

    [Fact]
    public void Slot_64_crosses_into_the_next_third_octet()
    {
        var plan = VmNetworkPlan.For("vm-00000000", 64);

        Assert.Equal(IPAddress.Parse("10.231.1.1"), plan.HostAddress);
    }

    [Fact]
    public void The_last_slot_uses_the_last_subnet_of_the_prefix()
    {
        var plan = VmNetworkPlan.For("vm-ffffffff", VmNetworkPlan.MaxSlot);

        Assert.Equal(16383, VmNetworkPlan.MaxSlot);
        Assert.Equal(IPAddress.Parse("10.231.255.253"), plan.HostAddress);
        Assert.Equal(IPAddress.Parse("10.231.255.254"), plan.NamespaceAddress);
    }

    [Fact]
    public void Link_names_fit_the_kernel_limit_of_15_characters()
    {
        var plan = VmNetworkPlan.For("vm-ffffffff", 3);

        Assert.True(plan.HostLink.Length <= 15);
    }

    [Fact]
    public void Every_guest_gets_the_same_address_behind_tap0()
    {
        Assert.Equal("172.30.0.1/30", VmNetworkPlan.GatewayCidr);
        Assert.Equal("172.30.0.2/30", VmNetworkPlan.GuestCidr);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(16384)]
    [InlineData(int.MaxValue)]
    public void A_slot_out_of_range_is_an_invalid_argument(int slot)
    {
        var ex = Assert.Throws<VmsanException>(() => VmNetworkPlan.For("vm-1a2b3c4d", slot));

        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1a2b3c4d")]
    [InlineData("vm-1a2b3c4")]
    [InlineData("vm-1a2b3c4d5")]
    [InlineData("vm-1A2B3C4D")]
    [InlineData("vm-1a2b3c4g")]
    [InlineData("vm-../../x")]
    [InlineData("vm-1a2b 3c4")]
    public void A_malformed_vm_id_is_an_invalid_argument(string vmId)
    {
        var ex = Assert.Throws<VmsanException>(() => VmNetworkPlan.For(vmId, 0));

        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
    }

    [Theory]
    [InlineData("vmsan-1a2b3c4d", "vm-1a2b3c4d")]
    [InlineData("vsn-1a2b3c4d", "vm-1a2b3c4d")]
    [InlineData("vmsan-1a2b3c4", null)]
    [InlineData("vmsan-other", null)]
    [InlineData("vt-1a2b3c4d", null)]
    [InlineData("eth0", null)]
    public void Names_map_back_to_their_vm(string name, string? vmId)
    {
        Assert.Equal(vmId, VmNetworkPlan.VmIdFromName(name));
    }
}
