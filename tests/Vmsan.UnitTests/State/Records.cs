using Vmsan.Core.State;

namespace Vmsan.UnitTests.State;

internal static class Records
{
    public static VmRecord Sample(string id = "vm-1a2b3c4d", VmStatus status = VmStatus.Running) => new()
    {
        Id = id,
        Status = status,
        CreatedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero).AddTicks(9),
        StartedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 6, TimeSpan.Zero),
        Vcpus = 2,
        MemoryMib = 768,
        DiskMib = 4096,
        Runtime = "base",
        Kernel = "/var/lib/vmsan/kernel/vmlinux",
        Initrd = "/var/lib/vmsan/kernel/initrd.img",
        BaseImage = "/var/lib/vmsan/runtimes/base/rootfs.ext4",
        Accel = "tcg",
        Network = new VmNetwork
        {
            Slot = 3,
            Netns = "vmsan-" + id[3..],
            HostVeth = "vsn-" + id[3..],
            HostIp = "10.231.0.13",
            NsIp = "10.231.0.14",
            GuestIp = "172.30.0.2",
            GatewayIp = "172.30.0.1",
            Dns = "10.231.0.13",
        },
        Supervisor = new ProcessRef(100, 12345),
        Vmm = new ProcessRef(101, 12346),
        BootMs = 1440,
    };
}
