using System.Globalization;
using System.Text.RegularExpressions;

namespace Vmsan.Vmm.Qemu;

/// <summary>How this QEMU spells chroot and user switching (they moved to <c>-run-with</c>).</summary>
public enum QemuPrivilegeSyntax
{
    /// <summary>QEMU before 8.1: <c>-chroot DIR -runas UID:GID</c>.</summary>
    Legacy,
    /// <summary>8.1 to 9.0: <c>-run-with chroot=DIR -runas UID:GID</c>.</summary>
    RunWithChroot,
    /// <summary>9.1 and later: <c>-run-with chroot=DIR,user=UID:GID</c>.</summary>
    RunWith,
}

/// <summary>
/// The one place the QEMU command line is built: the VM's devices (<see cref="BuildArgs"/>) and
/// the launcher chain that confines it (<see cref="BuildArgv"/>). Pure: unit-tested.
/// </summary>
public static partial class QemuCommandLine
{
    /// <summary>
    /// Capabilities QEMU keeps until it has opened its files, chrooted and switched uid (all lost
    /// at that switch): chroot, set*id, and reading/writing files owned by the VM's uid.
    /// </summary>
    public const string StartupCapabilities = "cap_sys_chroot,cap_setuid,cap_setgid,cap_dac_override";

    public static QemuPrivilegeSyntax SyntaxFor(Version v) =>
        v >= new Version(9, 1) ? QemuPrivilegeSyntax.RunWith
        : v >= new Version(8, 1) ? QemuPrivilegeSyntax.RunWithChroot
        : QemuPrivilegeSyntax.Legacy;

    /// <summary>Parses <c>QEMU emulator version 7.2.22 (Debian ...)</c>.</summary>
    public static Version? ParseVersion(string versionOutput)
    {
        var m = VersionRegex().Match(versionOutput);
        return m.Success ? new Version(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)) : null;
    }

    [GeneratedRegex(@"QEMU emulator version (\d+)\.(\d+)")]
    private static partial Regex VersionRegex();

    /// <summary>
    /// The build from <c>--version</c> (<c>QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)</c>) in the
    /// form QMP <c>query-version</c> gives it and snapshots record: <c>7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)</c>.
    /// A snapshot's device state only loads into the build that wrote it, so two builds compare as whole strings.
    /// </summary>
    public static string? ParseBuild(string versionOutput)
    {
        var m = BuildRegex().Match(versionOutput);
        if (!m.Success)
            return null;
        var package = m.Groups[2].Value.Trim();
        return package.Length == 0 ? m.Groups[1].Value : $"{m.Groups[1].Value} ({package})";
    }

    [GeneratedRegex(@"QEMU emulator version (\d+\.\d+\.\d+)(?: \(([^\n]*)\))?[ \t]*$", RegexOptions.Multiline)]
    private static partial Regex BuildRegex();

    /// <summary>The full argument vector of QEMU itself (without the binary).</summary>
    public static List<string> BuildArgs(VmLaunchSpec spec, QemuPrivilegeSyntax syntax = QemuPrivilegeSyntax.Legacy)
    {
        var inv = CultureInfo.InvariantCulture;
        var args = new List<string>
        {
            "-name", spec.VmId,
            // ACPI stays on: the cloud kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES and finds the
            // virtio-mmio devices through ACPI tables.
            "-M", "microvm,x-option-roms=off,rtc=on" + (spec.MemoryFile is null ? "" : ",memory-backend=mem"),
        };
        if (spec.Accel.Kind == AccelKind.Kvm)
        {
            args.AddRange(["-accel", "kvm", "-cpu", "host"]);
        }
        else
        {
            args.AddRange(["-accel", $"tcg,thread=multi,tb-size={spec.Settings.TcgTbSizeMib.ToString(inv)}", "-cpu", spec.Settings.TcgCpu]);
        }
        args.AddRange([
            "-m", spec.MemoryMib.ToString(inv),
            "-smp", spec.Vcpus.ToString(inv),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        ]);
        if (spec.MemoryFile is not null)
        {
            args.AddRange(["-object", $"memory-backend-file,id=mem,size={spec.MemoryMib.ToString(inv)}M,mem-path={EscapeOpt(spec.MemoryFile)},share={(spec.MemoryShared ? "on" : "off")}"]);
        }
        args.AddRange([
            "-kernel", spec.Kernel,
            "-initrd", spec.Initrd,
            "-append", spec.KernelArgs,
            "-chardev", $"file,id=con0,path={EscapeOpt(spec.ConsoleLog)}",
            "-serial", "chardev:con0",
            "-drive", $"id=root,file={EscapeOpt(spec.Disk)},format={spec.DiskFormat},if=none,discard=unmap,detect-zeroes=unmap",
            "-device", "virtio-blk-device,drive=root",
        ]);
        if (spec.Tap is not null)
        {
            args.AddRange([
                "-netdev", spec.TapFd is { } fd
                    ? $"tap,id=net0,fd={fd.ToString(inv)}"
                    : $"tap,id=net0,ifname={spec.Tap},script=no,downscript=no",
                "-device", $"virtio-net-device,netdev=net0,mac={spec.Mac}",
            ]);
        }
        if (VmDevices.HasRng(spec.Devices))
        {
            // A hardware RNG for the guest kernel (hw_random, virtio_rng): fed by QEMU's own getrandom(), so nothing is
            // opened by path (the VMM is chrooted) and no extra syscall is needed under its seccomp filter. Clones get
            // fresh randomness from it independently of the snapshot's RNG state. After the NIC: the virtio-mmio slot
            // order is part of the device layout a saved state loads into.
            args.AddRange(["-object", "rng-builtin,id=rng0", "-device", "virtio-rng-device,rng=rng0"]);
        }
        if (spec.Incoming)
            args.AddRange(["-S", "-incoming", "defer"]);
        args.AddRange(["-qmp", $"unix:{EscapeOpt(spec.ControlSocket)},server=on,wait=off"]);
        args.AddRange(ConfinementArgs(spec.Confinement, syntax));
        return args;
    }

    /// <summary>
    /// <c>-sandbox</c>, chroot and uid switch. QEMU installs its seccomp filter before it switches
    /// uid (measured on 7.2: with <c>elevateprivileges=deny</c> its own setuid is killed with
    /// SIGSYS), so set*id stays allowed when QEMU switches uid itself; after the switch it has no
    /// capability and every uid it could name is the VM's own.
    /// </summary>
    public static List<string> ConfinementArgs(VmmConfinementSpec c, QemuPrivilegeSyntax syntax)
    {
        var inv = CultureInfo.InvariantCulture;
        var args = new List<string>();
        if (c.Seccomp)
            args.AddRange(["-sandbox", $"on,obsolete=deny,elevateprivileges={(c.Uid is null ? "deny" : "allow")},spawn=deny,resourcecontrol=deny"]);
        var user = c.Uid is { } uid ? $"{uid.ToString(inv)}:{(c.Gid ?? uid).ToString(inv)}" : null;
        switch (syntax)
        {
            case QemuPrivilegeSyntax.Legacy:
                if (c.Jail is not null)
                    args.AddRange(["-chroot", c.Jail]);
                if (user is not null)
                    args.AddRange(["-runas", user]);
                break;
            case QemuPrivilegeSyntax.RunWithChroot:
                if (c.Jail is not null)
                    args.AddRange(["-run-with", $"chroot={EscapeOpt(c.Jail)}"]);
                if (user is not null)
                    args.AddRange(["-runas", user]);
                break;
            default:
                var parts = new List<string>();
                if (c.Jail is not null)
                    parts.Add($"chroot={EscapeOpt(c.Jail)}");
                if (user is not null)
                    parts.Add($"user={user}");
                if (parts.Count > 0)
                    args.AddRange(["-run-with", string.Join(',', parts)]);
                break;
        }
        return args;
    }

    /// <summary>
    /// The whole exec chain, each step exec'ing the next so the pid we start is QEMU's own:
    /// <c>sh</c> (enters the cgroup), <c>ip netns exec</c> (enters the namespace), <c>capsh</c>
    /// (empties the bounding set, keeps only <see cref="StartupCapabilities"/> for QEMU's start-up), QEMU.
    /// </summary>
    public static List<string> BuildArgv(VmLaunchSpec spec, string qemu, QemuPrivilegeSyntax syntax, int lastCap)
    {
        var argv = new List<string>();
        var c = spec.Confinement;
        if (c.CgroupProcs.Count > 0)
        {
            argv.AddRange(["/bin/sh", "-c",
                "for f do shift; [ \"$f\" = -- ] && break; echo $$ > \"$f\" || exit 125; done; exec \"$@\"", "vmsan-vmm-launch"]);
            argv.AddRange(c.CgroupProcs);
            argv.Add("--");
        }
        if (spec.Netns is not null)
            argv.AddRange(["ip", "netns", "exec", spec.Netns]);
        if (c.Uid is not null)
        {
            var all = string.Join(',', Enumerable.Range(0, lastCap + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)));
            // The inheritable set is set before the bounding set is emptied (capset refuses
            // inheritable bits outside the bounding set); root's exec then gets exactly these.
            argv.AddRange(["capsh", $"--inh={StartupCapabilities}", $"--drop={all}", $"--shell={qemu}", "--"]);
        }
        else
        {
            argv.Add(qemu);
        }
        argv.AddRange(BuildArgs(spec, syntax));
        return argv;
    }

    /// <summary>QEMU option values use ',' as separator; a literal comma is written twice.</summary>
    internal static string EscapeOpt(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
