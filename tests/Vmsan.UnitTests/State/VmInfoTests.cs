using Vmsan.Core.State;

namespace Vmsan.UnitTests.State;

public class VmInfoTests
{
    [Theory]
    [InlineData(VmStatus.Running, true)]
    [InlineData(VmStatus.Starting, true)]
    [InlineData(VmStatus.Stopping, true)]
    [InlineData(VmStatus.Creating, false)]
    [InlineData(VmStatus.Stopped, false)]
    [InlineData(VmStatus.Error, false)]
    public void The_pid_is_shown_only_for_live_states(VmStatus status, bool shown)
    {
        var info = VmInfo.From(Records.Sample(status: status));

        Assert.Equal(shown ? 101 : null, info.Pid);
    }

    [Fact]
    public void A_live_state_without_a_vmm_has_no_pid()
    {
        Assert.Null(VmInfo.From(Records.Sample() with { Vmm = null }).Pid);
    }

    [Theory]
    [InlineData(VmStatus.Creating, "creating")]
    [InlineData(VmStatus.Starting, "starting")]
    [InlineData(VmStatus.Running, "running")]
    [InlineData(VmStatus.Stopping, "stopping")]
    [InlineData(VmStatus.Stopped, "stopped")]
    [InlineData(VmStatus.Error, "error")]
    public void The_status_is_lowercase(VmStatus status, string expected)
    {
        Assert.Equal(expected, VmInfo.From(Records.Sample(status: status)).Status);
    }

    [Fact]
    public void Network_and_sizing_fields_are_copied()
    {
        var record = Records.Sample() with { Error = new VmError("VMM_FAILED", "boom"), StopReason = "vmm-exited" };

        var info = VmInfo.From(record);

        Assert.Equal(("vm-1a2b3c4d", "172.30.0.2", "vmsan-1a2b3c4d", "allow-all"), (info.Id, info.GuestIp, info.Netns, info.NetworkPolicy));
        Assert.Equal((2, 768, 4096, "base", "tcg", "qemu-microvm"), (info.Vcpus, info.MemoryMib, info.DiskMib, info.Runtime, info.Accel, info.Backend));
        Assert.Equal((1440, "vmm-exited"), (info.BootMs, info.StopReason));
        Assert.Equal("boom", info.Error!.Message);
    }
}
