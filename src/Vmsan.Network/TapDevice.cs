using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Vmsan.Core.Errors;

namespace Vmsan.Network;

/// <summary>
/// Opens a VM's TAP device for its VMM. The supervisor (root, CAP_NET_ADMIN) attaches to the TAP
/// inside the VM's namespace and hands the open descriptor to the VMM (<c>-netdev tap,fd=N</c>),
/// so the VMM itself never needs CAP_NET_ADMIN, /dev/net/tun or to own the device.
/// </summary>
public static class TapDevice
{
    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short IFF_VNET_HDR = 0x4000;
    private const int O_RDWR = 2;

    /// <summary>
    /// Attaches to <paramref name="tapName"/> in <paramref name="netnsName"/>. The descriptor is
    /// opened without O_CLOEXEC so the next child process inherits it: launch the VMM at once and
    /// dispose the handle right after.
    /// </summary>
    public static Task<SafeFileHandle> OpenInheritableAsync(string netnsName, string tapName) =>
        NetnsThread.RunAsync(netnsName, () => Open(tapName));

    /// <summary>
    /// Hands the persistent TAP to <paramref name="uid"/>/<paramref name="gid"/> (TUNSETOWNER,
    /// TUNSETGROUP) and detaches again, for a VMM that opens the TAP by name (Firecracker): the
    /// kernel then lets that uid attach without CAP_NET_ADMIN, and nobody else.
    /// </summary>
    public static Task SetOwnerAsync(string netnsName, string tapName, int uid, int gid) =>
        NetnsThread.RunAsync(netnsName, () =>
        {
            using var fd = Open(tapName);
            if (Libc.Ioctl(fd, Libc.TUNSETOWNER, (nuint)uid) != 0 || Libc.Ioctl(fd, Libc.TUNSETGROUP, (nuint)gid) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new VmsanException(ErrorCode.NetworkSetupFailed, $"Cannot give TAP {tapName} to uid {uid}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).",
                    "Run `vmsan doctor` to repair the VM's network, then start it again.");
            }
            return true;
        });

    private static unsafe SafeFileHandle Open(string tapName)
    {
        var name = Encoding.ASCII.GetBytes(tapName);
        if (name.Length is 0 or > 15)
            throw VmsanException.Invalid($"'{tapName}' is not an interface name.");
        SafeFileHandle fd;
        while (true)
        {
            // /dev/net/tun belongs to the namespace of the thread that opens it: this one.
            fd = Libc.OpenHandle("/dev/net/tun", O_RDWR, 0);
            if (!fd.IsInvalid)
                break;
            var errno = Marshal.GetLastPInvokeError();
            fd.Dispose();
            if (errno != Libc.EINTR)
                throw new VmsanException(ErrorCode.NetworkSetupFailed, $"open(/dev/net/tun) failed: {Marshal.GetPInvokeErrorMessage(errno)}.", "Run `modprobe tun`; see `vmsan doctor`.");
        }
        // struct ifreq: char ifr_name[16]; short ifr_flags; padded to 40 bytes.
        var ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        name.CopyTo(new Span<byte>(ifr, 16));
        // Same flags QEMU uses when it opens the TAP itself (vnet headers carry virtio offloads).
        *(short*)(ifr + 16) = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        if (Libc.Ioctl(fd, Libc.TUNSETIFF, ifr) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            fd.Dispose();
            throw new VmsanException(ErrorCode.NetworkSetupFailed, $"Cannot attach to TAP {tapName}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).",
                "Run `vmsan doctor` to repair the VM's network, then start it again.");
        }
        return fd;
    }
}
