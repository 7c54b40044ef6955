using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Vmm.Qemu;

namespace Vmsan.Diagnostics;

public sealed record DoctorCheck(string Name, bool Ok, string Detail, string? Fix = null);

public sealed record DoctorReport(IReadOnlyList<DoctorCheck> Checks, IReadOnlyList<string> Repaired)
{
    public bool Ok => Checks.All(c => c.Ok);
}

/// <summary>Checks every prerequisite (with a fix for each failure) and reconciles state: VMs whose VMM died, leaked namespaces and links, abandoned reservations.</summary>
public sealed class Doctor(VmsanClient client)
{
    public async Task<DoctorReport> RunAsync(CancellationToken ct = default)
    {
        var checks = new List<DoctorCheck>();
        var repaired = new List<string>();
        var paths = client.Paths;

        checks.Add(new("root", LibcPublic.IsRoot(), LibcPublic.IsRoot() ? "running as root" : "not root",
            "Run vmsan as root: it creates namespaces, TAP devices and nftables rules."));
        foreach (var (tool, pkg) in (ReadOnlySpan<(string, string)>)[("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("ip", "iproute2"), ("nft", "nftables"), ("setsid", "util-linux")])
        {
            var path = QemuMicrovmBackend.FindOnPath(tool);
            checks.Add(new(tool, path is not null, path ?? "not found", $"apt-get install {pkg}"));
        }
        var tun = File.Exists("/dev/net/tun") || Directory.Exists("/dev/net");
        checks.Add(new("/dev/net/tun", tun, tun ? "present" : "missing", "modprobe tun"));
        var accel = client.Options.AccelDetector.Detect("auto");
        checks.Add(new("accelerator", true, $"{accel.Name}: {accel.Reason}" + (accel.TscKhz is { } k ? $" (tsc_early_khz={k})" : "")));
        foreach (var (name, file) in (ReadOnlySpan<(string, string)>)[("kernel", paths.DefaultKernel), ("initrd", paths.DefaultInitrd), ("runtime base", paths.RuntimeRootfs("base"))])
        {
            var ok = File.Exists(file);
            checks.Add(new(name, ok, ok ? file : $"{file} missing", "Run ./install.sh"));
        }
        if (LibcPublic.IsRoot() && QemuMicrovmBackend.FindOnPath("nft") is not null)
        {
            var ruleset = await client.Options.Commands.RunAsync("nft", ["list", "ruleset"], ct: ct).ConfigureAwait(false);
            var blockers = ruleset.Ok ? ForwardDropChains(ruleset.Stdout) : [];
            checks.Add(new("forwarding", blockers.Count == 0,
                blockers.Count == 0 ? "no other firewall drops forwarded traffic" : $"forward chains with policy drop: {string.Join(", ", blockers)}; guests may have no network",
                "Allow forwarding for vmsan's transit range, e.g. `iptables -I FORWARD -s 10.231.0.0/16 -j ACCEPT; iptables -I FORWARD -d 10.231.0.0/16 -j ACCEPT`."));
        }
        var homeOk = true;
        try
        {
            Directory.CreateDirectory(paths.VmsDir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            homeOk = false;
        }
        checks.Add(new("state directory", homeOk, paths.Home, $"Make {paths.Home} writable or set VMSAN_HOME."));

        if (homeOk && LibcPublic.IsRoot())
        {
            // Reservations left by a create that died before writing vm.json.
            foreach (var dir in Directory.EnumerateDirectories(paths.VmsDir))
            {
                var id = Path.GetFileName(dir);
                if (File.Exists(Path.Combine(dir, "vm.json")))
                    continue;
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) < TimeSpan.FromMinutes(1))
                    continue;
                await client.Network.TeardownAsync(id, ct).ConfigureAwait(false);
                Directory.Delete(dir, true);
                repaired.Add($"removed abandoned reservation {id}");
            }
            var live = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in client.Store.ListIds())
            {
                var before = client.Store.TryLoad(id);
                var after = await client.ReconcileAsync(id, ct).ConfigureAwait(false);
                if (before is not null && after is not null && before.Status != after.Status)
                    repaired.Add($"{id}: {before.Status.ToString().ToLowerInvariant()} -> {after.Status.ToString().ToLowerInvariant()} ({after.StopReason})");
                if (after is not null && (after.Status is not (VmStatus.Stopped or VmStatus.Error)))
                    live.Add(id);
            }
            foreach (var leaked in await client.Network.ListLeakedAsync(live, ct).ConfigureAwait(false))
            {
                if (!client.OwnsNetwork(leaked.VmId))
                    continue;
                await client.Network.TeardownAsync(leaked.VmId, ct).ConfigureAwait(false);
                repaired.Add($"removed leaked {leaked.Kind.ToString().ToLowerInvariant()} {leaked.Name}");
            }
        }
        return new DoctorReport(checks, repaired);
    }

    /// <summary>
    /// Base chains on the forward hook with a drop policy in tables other than vmsan's. nftables
    /// accepts a packet only if every base chain on a hook does, so vmsan's own accept cannot
    /// override them (Docker's iptables FORWARD DROP is the usual one).
    /// </summary>
    public static List<string> ForwardDropChains(string ruleset)
    {
        var found = new List<string>();
        string? table = null, chain = null;
        foreach (var raw in ruleset.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("table ", StringComparison.Ordinal))
                table = line[6..].TrimEnd('{', ' ');
            else if (line.StartsWith("chain ", StringComparison.Ordinal))
                chain = line[6..].TrimEnd('{', ' ');
            else if (line.Contains("hook forward", StringComparison.Ordinal) && line.Contains("policy drop", StringComparison.Ordinal)
                     && table is not null && table != "ip vmsan")
                found.Add($"{table} {chain}");
        }
        return found;
    }
}
