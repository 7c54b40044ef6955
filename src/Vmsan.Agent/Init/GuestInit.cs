using System.Buffers.Binary;
using System.Text;

namespace Vmsan.Agent.Init;

/// <summary>
/// The init duties of PID 1 (docs/internals.md, guest boot chain step 4). Every step logs and carries on
/// when it fails: a guest with a missing /dev/shm is better than a kernel panic.
/// </summary>
internal static class GuestInit
{
    public static GuestConfig Run()
    {
        var config = GuestConfig.ReadAndDelete(GuestConfig.DefaultPath);
        const ulong NoSuidDevExec = Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC;
        Step("mount /proc", () => Mount("proc", "/proc", "proc", NoSuidDevExec, null));
        Step("mount /sys", () => Mount("sysfs", "/sys", "sysfs", NoSuidDevExec, null));
        Step("mount /dev", () => Mount("devtmpfs", "/dev", "devtmpfs", Libc.MS_NOSUID, "mode=0755"));
        Step("mount /dev/pts", () => Mount("devpts", "/dev/pts", "devpts", Libc.MS_NOSUID | Libc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"));
        Step("mount /dev/shm", () => Mount("tmpfs", "/dev/shm", "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, "mode=1777"));
        Step("mount /tmp", () => Mount("tmpfs", "/tmp", "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, "mode=1777"));
        Step("/dev links", DevLinks);
        if (config.Id is { Length: > 0 } id)
        {
            Step("sethostname", () => SetHostname(id));
        }

        Step("loopback", LoopbackUp);
        return config;
    }

    /// <summary>
    /// Online resize is safe on a mounted, busy ext4, and under emulation it takes a few hundred
    /// milliseconds: run it beside the server instead of in front of it.
    /// </summary>
    public static void GrowRootInBackground() =>
        new Thread(() => Step("grow root filesystem", () => GrowRoot("/dev/vda"))) { IsBackground = true, Name = "grow-root" }.Start();

    private static void Step(string name, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            AgentLog.Warn($"{name}: {e.Message}");
        }
    }

    private static void Mount(string source, string target, string type, ulong flags, string? data)
    {
        Directory.CreateDirectory(target);
        if (Libc.Mount(source, target, type, flags, data) == -1)
        {
            var errno = Libc.LastErrno;
            if (errno != Libc.EBUSY)
            {
                throw Libc.ErrnoException("mount", errno, target);
            }
        }
    }

    /// <summary>devtmpfs lacks the /dev/fd family that shells (process substitution) and scripts use.</summary>
    private static void DevLinks()
    {
        (string Link, string Target)[] links =
        [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/core", "/proc/kcore"),
        ];
        foreach (var (link, target) in links)
        {
            if (!Path.Exists(link) && new FileInfo(link).LinkTarget is null)
            {
                File.CreateSymbolicLink(link, target);
            }
        }
    }

    private static unsafe void SetHostname(string name)
    {
        var bytes = Encoding.ASCII.GetBytes(name);
        fixed (byte* p = bytes)
        {
            Libc.Check(Libc.SetHostname(p, (nuint)bytes.Length), "sethostname");
        }
    }

    /// <summary>SIOCSIFFLAGS IFF_UP on lo; the kernel then gives it 127.0.0.1/8 by itself.</summary>
    private static unsafe void LoopbackUp()
    {
        using var socket = Libc.Socket(Libc.AF_INET, Libc.SOCK_DGRAM, 0);
        var ifreq = stackalloc byte[40];
        new Span<byte>(ifreq, 40).Clear();
        "lo"u8.CopyTo(new Span<byte>(ifreq, 16));
        var fd = (int)socket.DangerousGetHandle();
        Libc.Check(Libc.Ioctl(fd, Libc.SIOCGIFFLAGS, ifreq), "ioctl", "SIOCGIFFLAGS lo");
        *(short*)(ifreq + 16) |= 0x1; // IFF_UP
        Libc.Check(Libc.Ioctl(fd, Libc.SIOCSIFFLAGS, ifreq), "ioctl", "SIOCSIFFLAGS lo");
    }

    /// <summary>
    /// Grows the root ext4 to fill the disk when the disk (a qcow2 overlay created bigger than the base image)
    /// is larger than the filesystem. Only when / really is mounted from that disk.
    /// </summary>
    private static unsafe void GrowRoot(string device)
    {
        if (!File.Exists(device) || !RootIsOn(device))
        {
            return;
        }

        using var disk = File.OpenHandle(device, FileMode.Open, FileAccess.Read);
        ulong diskBytes;
        Libc.Check(Libc.Ioctl((int)disk.DangerousGetHandle(), Libc.BLKGETSIZE64, &diskBytes), "ioctl", "BLKGETSIZE64");

        var superblock = new byte[1024];
        if (RandomAccess.Read(disk, superblock, 1024) != superblock.Length ||
            BinaryPrimitives.ReadUInt16LittleEndian(superblock.AsSpan(0x38)) != 0xEF53)
        {
            return;
        }

        var blockSize = 1024UL << (int)BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x18));
        var blocks = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x04));
        var incompat = BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x60));
        if ((incompat & 0x80) != 0)
        {
            blocks |= (ulong)BinaryPrimitives.ReadUInt32LittleEndian(superblock.AsSpan(0x150)) << 32;
        }

        var target = diskBytes / blockSize;
        if (target <= blocks)
        {
            return;
        }

        using var root = Libc.Open("/", Libc.O_DIRECTORY);
        Libc.Check(Libc.Ioctl((int)root.DangerousGetHandle(), Libc.EXT4_IOC_RESIZE_FS, &target), "ioctl", "EXT4_IOC_RESIZE_FS");
        AgentLog.Info($"root filesystem grown from {blocks} to {target} blocks of {blockSize} bytes");
    }

    private static bool RootIsOn(string device)
    {
        string? source = null;
        foreach (var line in File.ReadLines("/proc/self/mounts"))
        {
            var fields = line.Split(' ');
            if (fields.Length >= 3 && fields[1] == "/" && fields[2] == "ext4")
            {
                source = fields[0];
            }
        }

        return source == device;
    }

    /// <summary>
    /// Power-off as PID 1: SIGTERM everyone, give them 2 s, SIGKILL the rest, sync, remount / read-only, and
    /// reboot(RB_POWER_OFF). Never returns.
    /// </summary>
    public static void PowerOff(Exec.ProcessReaper reaper)
    {
        AgentLog.Info("shutting down: SIGTERM to all processes");
        Libc.Kill(-1, Libc.SIGTERM);
        WaitForNoChildren(reaper, TimeSpan.FromSeconds(2));
        if (!reaper.NoChildren)
        {
            AgentLog.Info("shutting down: SIGKILL to the remaining processes");
            Libc.Kill(-1, Libc.SIGKILL);
            WaitForNoChildren(reaper, TimeSpan.FromSeconds(1));
        }

        Libc.Sync();
        if (Libc.Mount(null, "/", null, Libc.MS_REMOUNT | Libc.MS_RDONLY, null) == -1)
        {
            AgentLog.Warn($"remount / read-only: {Libc.StrError(Libc.LastErrno)}");
        }

        Libc.Sync();
        AgentLog.Info("powering off");
        Libc.Reboot(Libc.RB_POWER_OFF);
        AgentLog.Error($"reboot(RB_POWER_OFF) failed: {Libc.StrError(Libc.LastErrno)}");
        Thread.Sleep(Timeout.Infinite);
    }

    private static void WaitForNoChildren(Exec.ProcessReaper reaper, TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!reaper.NoChildren && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(20);
        }
    }
}
