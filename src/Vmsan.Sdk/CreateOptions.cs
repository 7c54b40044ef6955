using System.Globalization;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.Network.Policy;
using Vmsan.Network.Ports;

namespace Vmsan;

/// <summary>What to boot. Defaults: 1 vCPU, 512 MiB, 4 GiB disk (at least the runtime image), the <c>base</c> runtime, accelerator chosen automatically.</summary>
public sealed record CreateOptions
{
    /// <summary>Virtual CPUs, 1–32.</summary>
    public int Vcpus { get; init; } = 1;
    /// <summary>Guest RAM in MiB, 128–32768.</summary>
    public int MemoryMib { get; init; } = 512;
    /// <summary>Disk size in MiB; null = <see cref="DefaultDiskMib"/> or the runtime image's size if larger.</summary>
    public int? DiskMib { get; init; }

    /// <summary>The disk size when none is asked for (MiB).</summary>
    public const int DefaultDiskMib = 4096;
    /// <summary>The runtime image: <c>base</c>, <c>python3.13</c>, <c>node22</c> (see <see cref="KnownRuntimes"/>).</summary>
    public string Runtime { get; init; } = "base";
    /// <summary>A kernel image to boot instead of the installed one.</summary>
    public string? Kernel { get; init; }
    /// <summary>An ext4 root filesystem image to boot instead of the runtime's (used read-only, as a base).</summary>
    public string? Rootfs { get; init; }
    /// <summary><c>auto</c>, <c>kvm</c> or <c>tcg</c>.</summary>
    public string Accel { get; init; } = "auto";

    /// <summary><c>qemu</c> (default) or <c>firecracker</c>.</summary>
    public string Vmm { get; init; } = "qemu";

    /// <summary>Run the VMM as an unprivileged per-VM uid with no capabilities (<c>--no-drop-privileges</c> turns it off: root, every capability).</summary>
    public bool DropPrivileges { get; init; } = true;
    /// <summary>The VMM's seccomp filter (<c>--no-seccomp</c>).</summary>
    public bool Seccomp { get; init; } = true;
    /// <summary>Chroot the VMM into an empty directory (<c>--no-chroot</c>).</summary>
    public bool Chroot { get; init; } = true;
    /// <summary>A per-VM cgroup with memory, CPU and pids limits (<c>--no-cgroup</c>).</summary>
    public bool Cgroup { get; init; } = true;
    /// <summary>The egress policy (default allow-all; the always-denied set holds under every policy).</summary>
    public EgressPolicy NetworkPolicy { get; init; } = EgressPolicy.AllowAll;

    /// <summary>Ports published from the host to the guest (<see cref="PortMapping.Parse"/>).</summary>
    public IReadOnlyList<PortMapping> PublishedPorts { get; init; } = [];

    /// <summary>The ports as the network code has them.</summary>
    internal IReadOnlyList<PublishedPort> Ports => [.. PublishedPorts.Select(p => p.ToCore())];

    /// <summary>
    /// Boot an OCI image instead of a runtime: a registry reference (<c>node:22-alpine</c>,
    /// <c>localhost:5000/team/app:1.2</c>, <c>ghcr.io/org/app@sha256:…</c>), <c>docker-archive:FILE</c>,
    /// <c>oci:DIR[:TAG]</c> or <c>oci-archive:FILE[:TAG]</c>. A registry image already in the cache is not pulled again.
    /// </summary>
    public string? FromImage { get; init; }

    /// <summary>How to pull <see cref="FromImage"/> (platform, plain HTTP, credentials).</summary>
    public ImagePullOptions ImagePull { get; init; } = new();

    /// <summary>Where pull and conversion progress goes (null: nowhere).</summary>
    public IImagePullProgress? ImageProgress { get; init; }

    /// <summary>An image already pulled for <see cref="FromImage"/> (the CLI's <c>run</c> resolves it first): not read again.</summary>
    internal Images.Cache.ImageRecord? ResolvedImage { get; init; }

    /// <summary>
    /// The VM's lifetime, counted from create and enforced by its supervisor (null: none). <c>vmsan timeout</c>
    /// resets or clears it later.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>What happens at the timeout: <c>stop</c>, <c>pause</c> or <c>remove</c>.</summary>
    public string OnTimeout { get; init; } = TimeoutAction.Stop;

    /// <summary>
    /// Boot for real (<c>--cold</c>). By default a create resumes from its runtime's boot snapshot (made once, by the
    /// first cold create of the same kernel, initramfs, agent, image, QEMU build and sizes) and the VM gets its own
    /// identity on resume; it boots cold when none exists yet, with the Firecracker backend, a custom kernel or root,
    /// a <c>--no-*</c> confinement switch, or <c>VMSAN_WARM=0</c>.
    /// </summary>
    public bool Cold { get; init; }

    /// <summary>The runtimes install.sh can build.</summary>
    public static readonly string[] KnownRuntimes = ["base", "node22", "python3.13"];

    /// <summary>Checks every value before anything is created.</summary>
    /// <exception cref="Errors.VmsanException">INVALID_ARGUMENT, naming the bad value.</exception>
    public void Validate() => Errors.PublicErrors.Run(Check);

    /// <summary>As <see cref="Validate"/>, failing with the implementation's exception (for the lifecycle's own calls).</summary>
    internal void Check()
    {
        if (Vcpus is < 1 or > 32)
            throw VmsanException.Invalid($"--vcpus must be between 1 and 32 (got {Vcpus}).", "Pass --vcpus 1..32.");
        if (MemoryMib is < 128 or > 32768)
            throw VmsanException.Invalid($"--memory must be between 128 and 32768 MiB (got {MemoryMib}).", "Pass --memory in MiB, e.g. --memory 1024.");
        if (DiskMib is { } disk && disk is < 256 or > 1024 * 1024)
            throw VmsanException.Invalid($"--disk must be between 256 MiB and 1 TiB (got {DiskMib.Value} MiB).", "Pass --disk like 4G or 2048M.");
        if (string.IsNullOrWhiteSpace(Runtime) || !Runtime.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            throw VmsanException.Invalid($"Invalid runtime name '{Runtime}'.", $"Use one of: {string.Join(", ", KnownRuntimes)}.");
        TimeoutAction.Validate(Timeout, OnTimeout, explicitAction: OnTimeout != TimeoutAction.Stop);
        if (Accel is not ("auto" or "kvm" or "tcg"))
            throw VmsanException.Invalid($"Unknown accelerator '{Accel}'.", "Use --accel auto, kvm or tcg.");
        if (Vmm is not ("qemu" or "firecracker"))
            throw VmsanException.Invalid($"Unknown VMM '{Vmm}'.", "Use --vmm qemu or --vmm firecracker.");
        if (Kernel is not null && !File.Exists(Kernel))
            throw VmsanException.Invalid($"Kernel image '{Kernel}' does not exist.", "Pass the path of a vmlinux (PVH ELF) image.");
        if (FromImage is not null)
        {
            if (Rootfs is not null || Runtime != "base")
                throw VmsanException.Invalid("--from-image cannot be combined with --rootfs or --runtime.", "Pass one of --from-image, --rootfs, --runtime.");
            // A malformed reference or archive spec is refused here, before anything is fetched or created.
            Images.Sources.ImageSources.CanonicalName(FromImage);
        }
        if (Rootfs is not null && !File.Exists(Rootfs))
            throw VmsanException.Invalid($"Root filesystem image '{Rootfs}' does not exist.", "Pass the path of an ext4 image.");
        ArgumentNullException.ThrowIfNull(NetworkPolicy);
        PortSpec.CheckDistinct(Ports);
    }

    /// <summary>Parses sizes like <c>4096</c> (MiB), <c>512M</c>, <c>4G</c>, <c>1T</c>.</summary>
    /// <param name="text">The size.</param>
    /// <param name="flag">What it is for (named in the error).</param>
    /// <exception cref="Errors.VmsanException">INVALID_ARGUMENT.</exception>
    public static int ParseSizeMib(string text, string flag) => Errors.PublicErrors.Run(() => SizeMib(text, flag));

    internal static int SizeMib(string text, string flag)
    {
        var t = text.Trim().ToUpperInvariant();
        if (t.EndsWith("IB", StringComparison.Ordinal))
            t = t[..^2];
        else if (t.EndsWith('B'))
            t = t[..^1];
        long mult = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            mult = t[^1] switch
            {
                'M' => 1,
                'G' => 1024,
                'T' => 1024 * 1024,
                _ => -1,
            };
            t = t[..^1];
        }
        if (mult < 0 || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > int.MaxValue / mult)
            throw VmsanException.Invalid($"{flag}: '{text}' is not a size.", $"Write {flag} as MiB (2048) or with a unit (512M, 4G).");
        return (int)(n * mult);
    }
}
