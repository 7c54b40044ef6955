using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Vmsan.Snapshots;

/// <summary>
/// Everything that shapes a guest up to the moment its agent first answers. Two cold boots with equal inputs reach
/// the same state (apart from the identity a clone's re-key replaces: id, token, hostname, entropy, clock), so one
/// boot snapshot serves both. Files are named with their size and modification time: a rebuilt kernel, initramfs,
/// agent, runtime image or vmsan binary gives a new key, and the old snapshot is simply never looked up again.
/// </summary>
internal sealed record BootKeyInputs
{
    public required string Backend { get; init; }
    public required string Kernel { get; init; }
    /// <summary>The installed initramfs (it carries the agent); the per-VM copy only adds the guest's config.</summary>
    public required string Initrd { get; init; }
    /// <summary>The installed agent binary (also inside the initramfs; named on its own so a reinstall shows up even if the initramfs kept its size and time).</summary>
    public string? Agent { get; init; }
    /// <summary>The runtime image or converted OCI root the disk layers on.</summary>
    public required string BaseImage { get; init; }
    /// <summary>The program the supervisor runs (it writes the guest config and drives the boot).</summary>
    public IReadOnlyList<string> Vmsan { get; init; } = [];
    /// <summary>The QEMU build string; a device state only loads into the build that saved it.</summary>
    public required string VmmBuild { get; init; }
    public required string Accel { get; init; }
    public required string KernelArgs { get; init; }
    /// <summary>The TCG CPU model (VMSAN_TCG_CPU): the saved CPU state belongs to it.</summary>
    public string? TcgCpu { get; init; }
    public required string Devices { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    /// <summary>Part of the key: the clone's overlay has the snapshot's virtual size, and the guest's view of its disk was taken at boot.</summary>
    public required int DiskMib { get; init; }
}

internal static class BootSnapshotKey
{
    /// <summary>Bumped whenever what a boot snapshot holds, or how a warm clone uses it, changes.</summary>
    public const int Format = 1;

    public const string Prefix = "boot-";

    /// <summary>One line per input, in a fixed order: what is hashed, and what <c>snapshot.json</c> keeps to say why a key changed.</summary>
    public static string Describe(BootKeyInputs i, Func<string, string>? stamp = null)
    {
        stamp ??= Stamp;
        var sb = new StringBuilder();
        void Line(string name, string value) => sb.Append(name).Append('=').Append(value).Append('\n');
        Line("format", Format.ToString(CultureInfo.InvariantCulture));
        Line("backend", i.Backend);
        Line("kernel", stamp(i.Kernel));
        Line("initrd", stamp(i.Initrd));
        Line("agent", i.Agent is null ? "none" : stamp(i.Agent));
        Line("base", stamp(i.BaseImage));
        foreach (var v in i.Vmsan)
            Line("vmsan", stamp(v));
        Line("vmm", i.VmmBuild);
        Line("accel", i.Accel);
        Line("cmdline", i.KernelArgs);
        Line("tcg-cpu", i.TcgCpu ?? "none");
        Line("devices", i.Devices);
        Line("vcpus", i.Vcpus.ToString(CultureInfo.InvariantCulture));
        Line("memory", i.MemoryMib.ToString(CultureInfo.InvariantCulture));
        Line("disk", i.DiskMib.ToString(CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary><c>boot-</c> and 16 hex digits of the SHA-256 of <see cref="Describe"/>.</summary>
    public static string IdFor(string description) =>
        Prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(description)))[..16];

    public static string IdFor(BootKeyInputs i) => IdFor(Describe(i));

    /// <summary>Path, size and modification time (100 ns ticks, UTC); <c>absent</c> for a missing file.</summary>
    public static string Stamp(string path)
    {
        var f = new FileInfo(path);
        return f.Exists
            ? $"{f.FullName} {f.Length.ToString(CultureInfo.InvariantCulture)} {f.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture)}"
            : $"{path} absent";
    }
}
