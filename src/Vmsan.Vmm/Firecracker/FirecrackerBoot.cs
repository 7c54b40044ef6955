using System.Globalization;

namespace Vmsan.Vmm.Firecracker;

/// <summary>
/// The pre-boot configuration of one VM, in the order Firecracker takes it, then InstanceStart.
/// Paths are the ones Firecracker sees: inside the jailer's chroot (the jailer chroots it into
/// <c>&lt;base&gt;/firecracker/&lt;id&gt;/root</c>, where the files are linked).
/// </summary>
public static class FirecrackerBoot
{
    public const string Kernel = "/vmlinux";
    public const string Initrd = "/initrd.img";
    public const string RootDisk = "/rootfs.ext4";
    public const string LogFile = "/firecracker.log";
    public const string MetricsFile = "/firecracker.metrics";
    public const string ApiSocket = "/run/firecracker.socket";

    public static async Task ConfigureAndStartAsync(FirecrackerApiClient api, VmLaunchSpec spec, CancellationToken ct)
    {
        await ConfigureLoggingAsync(api, ct).ConfigureAwait(false);
        await api.PutMachineConfigAsync(new FcMachineConfig(spec.Vcpus, spec.MemoryMib, Smt: false), ct).ConfigureAwait(false);
        // Firecracker's serial console is ttyS0 on its stdout; reboot=k makes the guest's reset
        // (SendCtrlAltDel, or a guest reboot) end Firecracker instead of looping.
        await api.PutBootSourceAsync(new FcBootSource(Kernel, spec.KernelArgs + " reboot=k", Initrd), ct).ConfigureAwait(false);
        await api.PutDriveAsync(new FcDrive("rootfs", IsRootDevice: false, PathOnHost: RootDisk, IsReadOnly: false), ct).ConfigureAwait(false);
        if (spec.Tap is not null)
            await api.PutNetworkInterfaceAsync(new FcNetworkInterface("eth0", spec.Tap, spec.Mac), ct).ConfigureAwait(false);
        await api.InstanceStartAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Logger and metrics: the only resources Firecracker takes before either a boot or a snapshot load (neither is saved in a snapshot).</summary>
    public static async Task ConfigureLoggingAsync(FirecrackerApiClient api, CancellationToken ct)
    {
        await api.PutLoggerAsync(new FcLogger(LogFile, "Warning", ShowLevel: true), ct).ConfigureAwait(false);
        await api.PutMetricsAsync(new FcMetrics(MetricsFile), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The jailer's argument vector: a dedicated non-root uid/gid, chroot under
    /// <paramref name="chrootBase"/>, a new PID namespace, the VM's network namespace, and the VM's
    /// cgroup limits written by the jailer into <c>&lt;controller root&gt;/&lt;parentCgroup&gt;/&lt;id&gt;</c>
    /// (the directory vmsan created and records, so removal and <c>doctor</c> find it). Firecracker's
    /// default seccomp filters stay on unless <paramref name="seccomp"/> is false (<c>--no-seccomp</c>).
    /// Null <paramref name="limits"/> (<c>--no-cgroup</c>): cgroup v2 with no <c>--cgroup</c> flags
    /// and a parent that does not exist is the one combination in which the jailer creates no cgroup
    /// and moves the process nowhere (with v1 it always creates one). Pure.
    /// </summary>
    public static List<string> JailerArgs(VmLaunchSpec spec, string firecracker, string chrootBase, int uid, int gid,
        int cgroupVersion, Cgroups.CgroupLimits? limits, string? parentCgroup = null, bool seccomp = true)
    {
        var inv = CultureInfo.InvariantCulture;
        var args = new List<string>
        {
            "--id", spec.VmId,
            "--exec-file", firecracker,
            "--uid", uid.ToString(inv),
            "--gid", gid.ToString(inv),
            "--chroot-base-dir", chrootBase,
            "--new-pid-ns",
        };
        if (spec.Netns is not null)
            args.AddRange(["--netns", spec.Netns.StartsWith('/') ? spec.Netns : "/run/netns/" + spec.Netns]);
        if (limits is null)
        {
            args.AddRange(["--cgroup-version", "2", "--parent-cgroup", "vmsan-no-cgroup/" + spec.VmId]);
        }
        else
        {
            args.AddRange(["--cgroup-version", cgroupVersion.ToString(inv)]);
            if (parentCgroup is { Length: > 0 })
                args.AddRange(["--parent-cgroup", parentCgroup]);
            if (cgroupVersion == 2)
            {
                args.AddRange(["--cgroup", $"memory.max={limits.MemoryMaxBytes.ToString(inv)}"]);
                args.AddRange(["--cgroup", "memory.swap.max=0"]);
                args.AddRange(["--cgroup", $"cpu.max={limits.CpuQuotaUs.ToString(inv)} {limits.CpuPeriodUs.ToString(inv)}"]);
                args.AddRange(["--cgroup", $"pids.max={limits.PidsMax.ToString(inv)}"]);
            }
            else
            {
                args.AddRange(["--cgroup", $"memory.limit_in_bytes={limits.MemoryMaxBytes.ToString(inv)}"]);
                args.AddRange(["--cgroup", $"cpu.cfs_period_us={limits.CpuPeriodUs.ToString(inv)}"]);
                args.AddRange(["--cgroup", $"cpu.cfs_quota_us={limits.CpuQuotaUs.ToString(inv)}"]);
                args.AddRange(["--cgroup", $"pids.max={limits.PidsMax.ToString(inv)}"]);
            }
        }
        args.AddRange(["--", "--api-sock", ApiSocket, "--level", "Warning"]);
        if (!seccomp)
            args.Add("--no-seccomp");
        return args;
    }
}
