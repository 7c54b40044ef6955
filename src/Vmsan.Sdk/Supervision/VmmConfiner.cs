using Vmsan.Core.Errors;
using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Vmm;
using Vmsan.Vmm.Cgroups;
using Vmsan.Vmm.Confinement;
using Vmsan.Vmm.Qemu;

namespace Vmsan.Supervision;

/// <summary>
/// Prepares what confines one VM's VMM before it starts: its uid (and the ownership of the files
/// it opens), its empty chroot directory, its cgroup. What the VM's switches turned off is not done.
/// </summary>
internal static class VmmConfiner
{
    /// <summary>Files the VMM opens, which only its uid may use. Everything else in the VM directory stays root's.</summary>
    private static readonly string[] VmmFiles = [VmDisk.Raw, "console.log", "initrd.img"];

    public const string JailDir = "jail";

    /// <param name="rec">The VM.</param>
    /// <param name="vmDir">Its directory.</param>
    /// <param name="accel">The accelerator (the VMM's memory overhead depends on it).</param>
    /// <param name="booting">A cold boot of a QEMU VM: its cgroup's CPU quota is written once the agent answers
    /// (<see cref="VmCgroup.ApplyCpuQuota"/>), not before. A restored VM runs its user's code from its first
    /// instruction, so it gets the quota from the start, as does Firecracker (its jailer writes the cgroup).</param>
    /// <param name="settings">The VMM's tuning (its memory overhead depends on the TCG cache size).</param>
    public static (VmmConfinementSpec Spec, VmConfinement State) Prepare(VmRecord rec, string vmDir, AccelChoice accel, VmmSettings settings, bool booting = false)
    {
        var want = rec.Confinement;
        int? uid = null, gid = null;
        if (want.DropPrivileges)
        {
            gid = VmmIdentity.AccountGid() ?? throw new VmsanException(ErrorCode.DependencyMissing,
                $"The '{VmmIdentity.Account}' account does not exist, so the VMM cannot run unprivileged.",
                "Run ./install.sh (it creates the account), or create the VM with --no-drop-privileges.");
            uid = VmmIdentity.UidFor(rec.Network.Slot);
        }
        // Host-side files are private whatever VMSAN_HOME is: the directory root's (0700), or 0710 with the VMMs'
        // group when QEMU runs unprivileged, because QEMU reopens its disk by path (end of a migration) after its uid
        // switch and must be able to pass through. The group gets search only: it cannot list the directory, and every
        // file in it is 0600, owned by root or (the VMM's own files) by this VM's uid, which no other VM has.
        LibcPublic.Chown(vmDir, 0, gid ?? 0);
        File.SetUnixFileMode(vmDir, VmStore.PrivateDir | (gid is null ? UnixFileMode.None : UnixFileMode.GroupExecute));
        foreach (var f in VmmFiles.Append(VmDisk.TopFor(rec)))
        {
            var path = Path.Combine(vmDir, f);
            if (!File.Exists(path))
                continue;
            if (uid is not null)
                LibcPublic.Chown(path, uid.Value, gid!.Value);
            File.SetUnixFileMode(path, VmStore.PrivateFile);
        }
        string? jail = null;
        if (want.Chroot)
        {
            jail = Path.Combine(vmDir, JailDir);
            // Empty: QEMU has opened every file it needs before it chroots. Owned by the VM's uid
            // so files QEMU creates later (relative to its new root) stay its own.
            Directory.CreateDirectory(jail);
            foreach (var leftover in Directory.EnumerateFileSystemEntries(jail))
            {
                if (Directory.Exists(leftover) && !File.GetAttributes(leftover).HasFlag(FileAttributes.ReparsePoint))
                    Directory.Delete(leftover, true);
                else
                    File.Delete(leftover);
            }
            if (uid is not null)
                LibcPublic.Chown(jail, uid.Value, gid!.Value);
            File.SetUnixFileMode(jail, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (rec.Backend != Vmm.Firecracker.FirecrackerBackend.BackendName)
                foreach (var file in Qcow2Chain.Files(Path.Combine(vmDir, VmDisk.TopFor(rec))))
                    MirrorIntoJail(jail, file);
        }
        VmCgroupState? cgroup = null;
        CgroupLimits? limits = null;
        if (want.Cgroup)
        {
            VmCgroup.Remove(want.Cgroups);
            limits = CgroupLimits.For(rec.Vcpus, rec.MemoryMib, CgroupLimits.OverheadMib(accel.Kind, settings));
            cgroup = VmCgroup.Create(rec.Id, limits, deferCpuQuota: booting && rec.Backend != Vmm.Firecracker.FirecrackerBackend.BackendName).State;
        }
        var state = want with { Uid = uid, Gid = gid, Jail = jail, Cgroups = cgroup };
        var spec = new VmmConfinementSpec
        {
            Uid = uid,
            Gid = gid,
            Seccomp = want.Seccomp,
            Jail = jail,
            CgroupProcs = cgroup is null ? [] : cgroup.Paths.Select(p => Path.Combine(p, "cgroup.procs")).ToList(),
            Limits = limits,
            CgroupVersion = cgroup?.Version,
            CgroupParent = cgroup is null ? null : VmCgroup.RelativeParent(cgroup),
        };
        return (spec, state);
    }

    /// <summary>
    /// Makes <paramref name="file"/> resolvable inside the jail at its own absolute path, as a hard link (the same
    /// inode: no copy, same owner and mode, so a read-only layer stays read-only to the VMM). QEMU 7.2 reopens
    /// disk images by path when their access mode changes (the end of a migration, <c>cont</c>, a disk freeze);
    /// without this a chrooted VMM could not be snapshotted. Directories on the way are root's, mode 0711
    /// (traversable, not listable). A file on another filesystem than the jail (a base image under a separately
    /// mounted assets directory) is left out: the read-only base is never reopened (its access mode never changes).
    /// </summary>
    internal static bool MirrorIntoJail(string jail, string file)
    {
        var target = jail + Path.GetFullPath(file);
        var dir = Path.GetDirectoryName(target)!;
        var missing = new Stack<string>();
        for (var d = dir; d.Length > jail.Length && !Directory.Exists(d); d = Path.GetDirectoryName(d)!)
            missing.Push(d);
        foreach (var d in missing)
        {
            Directory.CreateDirectory(d);
            File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        if (File.Exists(target))
            File.Delete(target);
        return LibcPublic.TryHardLink(file, target);
    }

    /// <summary>Removes the VM's cgroup once its processes are gone (retries briefly: a killed VMM may not be reaped yet).</summary>
    public static async Task RemoveCgroupAsync(VmCgroupState? cgroup)
    {
        if (cgroup is null)
            return;
        for (var i = 0; i < 50 && !VmCgroup.Remove(cgroup); i++)
            await Task.Delay(20).ConfigureAwait(false);
    }
}
