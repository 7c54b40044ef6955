using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using Vmsan.Core.Errors;
using Vmsan.Core.Processes;
using Vmsan.Network.Policy;

namespace Vmsan.Network;

/// <summary>
/// Builds each VM's network with <c>ip</c> and <c>nft</c>: a namespace <c>vmsan-&lt;8 hex&gt;</c> holding
/// <c>tap0</c> and <c>eth0</c>, a veth pair to the namespace vmsan runs in, NAT in both (docs/internals.md).
/// </summary>
public sealed class VmNetworkManager : IVmNetwork
{
    private const string Ip = "ip";
    private const string Nft = "nft";
    private const string IpForward = "/proc/sys/net/ipv4/ip_forward";
    private const string SetupFix =
        "vmsan needs root, iproute2, nftables and /dev/net/tun; run `vmsan doctor` to check the host and remove leftovers.";

    private readonly ICommandRunner _runner;
    private readonly string? _hostNetns;
    private readonly string _resolvConf;

    /// <param name="runner">Runs <c>ip</c> and <c>nft</c>.</param>
    /// <param name="hostNetns">
    /// When set, the "host" side (veth host ends, the shared NAT table, forwarding) lives in this named
    /// namespace instead of the one the process runs in: tests build a throwaway world this way, and
    /// vmsan can keep all VMs behind one namespace of its own.
    /// </param>
    /// <param name="resolvConfPath">The resolv.conf to pick guests' resolver from; by default the one
    /// <c>ip netns exec</c> would show in the host namespace.</param>
    public VmNetworkManager(ICommandRunner runner, string? hostNetns = null, string? resolvConfPath = null)
    {
        ArgumentNullException.ThrowIfNull(runner);
        if (hostNetns is not null)
            NetnsThread.PathOf(hostNetns);
        _runner = runner;
        _hostNetns = hostNetns;
        _resolvConf = resolvConfPath
            ?? (hostNetns is not null && File.Exists($"/etc/netns/{hostNetns}/resolv.conf")
                ? $"/etc/netns/{hostNetns}/resolv.conf"
                : HostResolver.DefaultResolvConf);
    }

    /// <summary>The namespace host-side objects live in; null for the process's own.</summary>
    public string? HostNetns => _hostNetns;

    public IPAddress? GuestResolver() => HostResolver.FirstGuestReachable(_resolvConf);

    public Task<VmNetworkInfo> SetupAsync(string vmId, int slot, CancellationToken ct = default) =>
        SetupAsync(vmId, slot, NetworkPolicy.AllowAll, GuestResolver(), ct);

    public async Task<VmNetworkInfo> SetupAsync(string vmId, int slot, NetworkPolicy policy, IPAddress? guestDns, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var plan = VmNetworkPlan.For(vmId, slot);
        ct.ThrowIfCancellationRequested();
        // The table goes in before tap0 exists, so the guest never sees a moment without its policy.
        var table = NftPolicy.Render(policy, new NftPolicyContext(await HostAddressesAsync().ConfigureAwait(false), guestDns), dropLegacyTable: true);
        var createdNetns = false;
        var createdLink = false;
        var pending = new List<Task>(6);
        try
        {
            // Steps that don't depend on each other run at once: each is a process spawn.
            pending.Add(ConfigureHostAsync(vmId, ct));
            if (!NetnsThread.Exists(plan.NetnsName))
            {
                await RunAsync(vmId, Ip, ["netns", "add", plan.NetnsName], null, ct).ConfigureAwait(false);
                createdNetns = true;
            }
            pending.Add(EnableForwardingAsync(plan.NetnsName));
            pending.Add(DisableIcmpRateLimitAsync(plan.NetnsName));
            await RunAsync(vmId, Ip, ["netns", "exec", plan.NetnsName, Nft, "-f", "-"], table, ct).ConfigureAwait(false);
            createdLink = await EnsureVethAsync(plan, ct).ConfigureAwait(false);
            pending.Add(HostIpBatchAsync(vmId,
            [
                $"address replace {plan.HostCidr} dev {plan.HostLink}",
                $"link set {plan.HostLink} up",
            ], ct));
            var nsCommands = new List<string>
            {
                "link set lo up",
                $"address replace {plan.NamespaceCidr} dev {VmNetworkPlan.NamespaceLink}",
                $"link set {VmNetworkPlan.NamespaceLink} up",
            };
            if (!(await NamespaceLinksAsync(vmId, plan.NetnsName, ct).ConfigureAwait(false)).Contains(VmNetworkPlan.TapName))
                nsCommands.Add($"tuntap add {VmNetworkPlan.TapName} mode tap");
            nsCommands.Add($"link set {VmNetworkPlan.TapName} address {VmNetworkPlan.GatewayMac}");
            nsCommands.Add($"address replace {VmNetworkPlan.GatewayCidr} dev {VmNetworkPlan.TapName}");
            nsCommands.Add($"link set {VmNetworkPlan.TapName} up");
            // The guest's MAC is ours to choose, so no ARP: a host probe sent while the guest NIC
            // is still down would otherwise hold the first connection until the next ARP
            // retransmit (~1 s later), which was most of the measured gap after the agent's start.
            nsCommands.Add($"neighbor replace {VmNetworkPlan.GuestAddress} lladdr {VmNetworkPlan.GuestMac} dev {VmNetworkPlan.TapName} nud permanent");
            nsCommands.Add($"route replace default via {plan.HostAddress} dev {VmNetworkPlan.NamespaceLink}");
            pending.Add(IpBatchAsync(vmId, plan.NetnsName, nsCommands, ct));
            pending.Add(ProhibitIpv6Async(plan.NetnsName, ct));
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Let steps in flight finish before undoing, or they could recreate what is being removed.
            try
            {
                await Task.WhenAll(pending).ConfigureAwait(false);
            }
            catch
            {
                // Already reported through ex (or an equivalent failure).
            }
            await RollbackAsync(plan, createdNetns, createdLink).ConfigureAwait(false);
            if (ex is OperationCanceledException || ex is VmsanException { Code: ErrorCode.NetworkSetupFailed })
                throw;
            throw new VmsanException(ErrorCode.NetworkSetupFailed, $"Cannot set up the network of {vmId}: {ex.Message}",
                (ex as VmsanException)?.Fix ?? SetupFix, ex);
        }
        return new VmNetworkInfo(plan, guestDns);
    }

    /// <summary>
    /// Every address of the namespace vmsan runs in (its veth ends included): the guest must reach
    /// none of them. Addresses the always-denied set covers already (loopback, link-local) are left out.
    /// </summary>
    public Task<IReadOnlyList<IPAddress>> HostAddressesAsync()
    {
        static IReadOnlyList<IPAddress> Read() =>
            NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Select(u => new IPAddress(u.Address.GetAddressBytes()))
                .Where(a => !AlwaysDenied.Contains(a))
                .Distinct()
                .ToList();

        return _hostNetns is null ? Task.Run(Read) : NetnsThread.RunAsync(_hostNetns, Read);
    }

    /// <summary>
    /// Puts <paramref name="policy"/> in force in a running VM's namespace, as one transaction: on
    /// failure the old policy stays. <paramref name="netns"/> is a name under /run/netns or a
    /// <c>/proc/PID/ns/net</c> path (the VMM's, from any mount namespace).
    /// </summary>
    public async Task ApplyPolicyAsync(string vmId, string netns, NetworkPolicy policy, IPAddress? guestDns, bool flushPins,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var script = NftPolicy.Render(policy, new NftPolicyContext(await HostAddressesAsync().ConfigureAwait(false), guestDns), flushPins);
        await RunNftInVmAsync(vmId, netns, script, ct).ConfigureAwait(false);
    }

    /// <summary>The refusal counters of a VM's table (packets per <see cref="NftLayout.Counters"/> name).</summary>
    public async Task<IReadOnlyDictionary<string, long>> RefusalCountersAsync(string netns, CancellationToken ct = default)
    {
        var r = await RunInVmAsync(netns, Nft, ["-j", "list", "counters", "table", NftLayout.Family, NftLayout.Table], ct).ConfigureAwait(false);
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!r.Ok)
            return counters;
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        foreach (var e in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (e.TryGetProperty("counter", out var c) && c.GetProperty("name").GetString() is { } name)
                counters[name] = c.GetProperty("packets").GetInt64();
        }
        return counters;
    }

    /// <summary>
    /// Deletes the conntrack entries of guest connections the (new) policy denies, inside the VM's
    /// namespace, so nothing established outlives a change (the egress chain refuses their next
    /// packet as well). Connections the proxy terminated (reply from the gateway) are the proxy's
    /// to judge and are left alone. Returns how many were cut; 0 without the conntrack tool.
    /// </summary>
    public async Task<int> CutDeniedConnectionsAsync(string netns, NetworkPolicy policy, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var list = await RunInVmAsync(netns, "conntrack", ["-L", "-s", VmNetworkPlan.GuestAddress.ToString()], ct).ConfigureAwait(false);
        if (!list.Ok)
            return 0;
        var hostAddresses = await HostAddressesAsync().ConfigureAwait(false);
        var denied = new HashSet<IPAddress>();
        foreach (var line in list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var dsts = fields.Where(f => f.StartsWith("dst=", StringComparison.Ordinal)).Select(f => f[4..]).ToList();
            var srcs = fields.Where(f => f.StartsWith("src=", StringComparison.Ordinal)).Select(f => f[4..]).ToList();
            if (dsts.Count == 0 || !IPAddress.TryParse(dsts[0], out var dst))
                continue;
            if (srcs.Count > 1 && srcs[1] == VmNetworkPlan.GatewayAddress.ToString())
                continue;
            if (!policy.AllowsAddress(dst, hostAddresses))
                denied.Add(dst);
        }
        var cut = 0;
        foreach (var dst in denied)
        {
            var r = await RunInVmAsync(netns, "conntrack", ["-D", "-s", VmNetworkPlan.GuestAddress.ToString(), "-d", dst.ToString()], ct).ConfigureAwait(false);
            if (r.Ok)
                cut += r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        }
        return cut;
    }

    /// <summary>Runs an nft script (<c>nft -f -</c>, one transaction) inside a VM's namespace.</summary>
    public Task<CommandResult> RunNftInVmAsync(string vmId, string netns, string script, CancellationToken ct = default)
    {
        var path = NetnsThread.PathOf(netns);
        IReadOnlyList<string> args = path.StartsWith("/proc/", StringComparison.Ordinal)
            ? ["--net=" + path, Nft, "-f", "-"]
            : ["netns", "exec", netns, Nft, "-f", "-"];
        return RunAsync(vmId, path.StartsWith("/proc/", StringComparison.Ordinal) ? "nsenter" : Ip, args, script, ct);
    }

    /// <summary>Runs a command (nft list, conntrack) inside a VM's namespace; returns its result, failed or not.</summary>
    public Task<CommandResult> RunInVmAsync(string netns, string file, IReadOnlyList<string> args, CancellationToken ct = default)
    {
        var path = NetnsThread.PathOf(netns);
        IReadOnlyList<string> full = path.StartsWith("/proc/", StringComparison.Ordinal)
            ? ["--net=" + path, file, .. args]
            : ["netns", "exec", netns, file, .. args];
        return _runner.RunAsync(path.StartsWith("/proc/", StringComparison.Ordinal) ? "nsenter" : Ip, full, null, ct);
    }

    public async Task TeardownAsync(string vmId, CancellationToken ct = default)
    {
        var netns = VmNetworkPlan.NetnsNameOf(vmId);
        var link = VmNetworkPlan.HostLinkOf(vmId);
        // The link first: deleting the namespace destroys the pair too, but asynchronously, and a
        // namespace kept alive by a process still in it (a dying VMM) would keep the pair as well.
        if (await HostLinkExistsAsync(vmId, link, ct).ConfigureAwait(false))
        {
            var r = await _runner.RunAsync(Ip, HostIp("link", "delete", link), null, ct).ConfigureAwait(false);
            if (!r.Ok && await HostLinkExistsAsync(vmId, link, ct).ConfigureAwait(false))
                throw TeardownFailed(vmId, $"ip link delete {link}", r);
        }
        if (NetnsThread.Exists(netns))
        {
            var r = await _runner.RunAsync(Ip, ["netns", "delete", netns], null, ct).ConfigureAwait(false);
            if (!r.Ok && NetnsThread.Exists(netns))
            {
                // Under `ip netns exec` every command has its own mount namespace: the bind mount
                // made by the supervisor's `ip netns add` is not here, only the empty mount-point
                // file in the shared /run/netns. The namespace itself dies with the processes that
                // hold it (supervisor, VMM); the file is all there is to remove.
                if (!IsMountPoint(NetnsThread.PathOf(netns)))
                    File.Delete(NetnsThread.PathOf(netns));
                else
                    throw TeardownFailed(vmId, $"ip netns delete {netns}", r);
            }
        }
    }

    private static bool IsMountPoint(string path)
    {
        try
        {
            return File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && f[4] == path);
        }
        catch (IOException)
        {
            return true;
        }
    }

    public async Task<IReadOnlyList<LeakedNetworkResource>> ListLeakedAsync(IReadOnlySet<string> liveVmIds, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(liveVmIds);
        var leaked = new List<LeakedNetworkResource>();
        if (Directory.Exists("/run/netns"))
        {
            foreach (var path in Directory.EnumerateFiles("/run/netns", VmNetworkPlan.NetnsPrefix + "*"))
            {
                var name = Path.GetFileName(path);
                if (VmNetworkPlan.VmIdFromName(name) is { } id && !liveVmIds.Contains(id))
                    leaked.Add(new LeakedNetworkResource(LeakedNetworkKind.Namespace, name, id));
            }
        }
        if (_hostNetns is null || NetnsThread.Exists(_hostNetns))
        {
            var r = await _runner.RunAsync(Ip, HostIp("-o", "link", "show"), null, ct).ConfigureAwait(false);
            if (!r.Ok)
                throw new VmsanException(ErrorCode.NetworkSetupFailed, $"Cannot list network links: {r.Stderr.Trim()}", SetupFix);
            foreach (var name in ParseLinkNames(r.Stdout))
            {
                if (name.StartsWith(VmNetworkPlan.HostLinkPrefix, StringComparison.Ordinal)
                    && VmNetworkPlan.VmIdFromName(name) is { } id && !liveVmIds.Contains(id))
                    leaked.Add(new LeakedNetworkResource(LeakedNetworkKind.HostLink, name, id));
            }
        }
        return leaked;
    }

    /// <summary>Link names from <c>ip -o link show</c> ("5: vsn-1a2b3c4d@if2: &lt;...").</summary>
    internal static List<string> ParseLinkNames(string output)
    {
        var names = new List<string>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var start = line.IndexOf(": ", StringComparison.Ordinal);
            if (start < 0)
                continue;
            var rest = line.AsSpan(start + 2);
            var end = rest.IndexOf(':');
            if (end <= 0)
                continue;
            var name = rest[..end];
            var at = name.IndexOf('@');
            names.Add((at >= 0 ? name[..at] : name).ToString());
        }
        return names;
    }

    private async Task ConfigureHostAsync(string vmId, CancellationToken ct)
    {
        var forwarding = EnableForwardingAsync(_hostNetns);
        var nft = _hostNetns is null
            ? RunAsync(vmId, Nft, ["-f", "-"], NftRulesets.Host(), ct)
            : RunAsync(vmId, Ip, ["netns", "exec", _hostNetns, Nft, "-f", "-"], NftRulesets.Host(), ct);
        await Task.WhenAll(forwarding, nft).ConfigureAwait(false);
    }

    /// <summary>
    /// Sets net.ipv4.ip_forward=1 in <paramref name="netns"/> (null: the process's own). /proc/sys/net
    /// shows the namespace of the thread that opens it, so this needs no process spawn.
    /// Written only when off: turning it on resets per-interface IPv4 settings.
    /// </summary>
    private static Task EnableForwardingAsync(string? netns)
    {
        static bool Enable()
        {
            if (File.ReadAllText(IpForward).Trim() != "1")
                File.WriteAllText(IpForward, "1");
            return true;
        }

        return netns is null ? Task.Run(Enable) : NetnsThread.RunAsync(netns, Enable);
    }

    /// <summary>
    /// Refusals answer with ICMP errors, which the kernel rate-limits per destination (one a second
    /// after a burst of 6): a guest trying a few closed doors in a row would see the later ones
    /// hang. The only destination of these errors is the guest itself.
    /// </summary>
    private static Task DisableIcmpRateLimitAsync(string netns) =>
        NetnsThread.RunAsync(netns, () =>
        {
            File.WriteAllText("/proc/sys/net/ipv4/icmp_ratelimit", "0");
            if (File.Exists("/proc/sys/net/ipv6/icmp/ratelimit"))
                File.WriteAllText("/proc/sys/net/ipv6/icmp/ratelimit", "0");
            return true;
        });

    /// <summary>
    /// Guests get no IPv6 route, but a root guest can give itself one via its gateway's link-local
    /// address. The namespace has no IPv6 uplink: a <c>prohibit</c> default route answers every such
    /// packet at once with ICMPv6 admin-prohibited (fatal for TCP and UDP alike; "no route" would
    /// leave a UDP socket waiting). Best effort: a host booted without IPv6 has nothing to refuse.
    /// </summary>
    private async Task ProhibitIpv6Async(string netns, CancellationToken ct) =>
        _ = await _runner.RunAsync(Ip, ["-n", netns, "route", "replace", "prohibit", "::/0"], null, ct).ConfigureAwait(false);

    /// <summary>Creates the veth pair unless both ends are already where they belong; true when it created it.</summary>
    private async Task<bool> EnsureVethAsync(VmNetworkPlan plan, CancellationToken ct)
    {
        var hostHas = await HostLinkExistsAsync(plan.VmId, plan.HostLink, ct).ConfigureAwait(false);
        var nsHas = (await NamespaceLinksAsync(plan.VmId, plan.NetnsName, ct).ConfigureAwait(false)).Contains(VmNetworkPlan.NamespaceLink);
        if (hostHas && nsHas)
            return false;
        // Half a pair cannot exist, so one end alone is something else under our name: replace it.
        if (nsHas)
            await RunAsync(plan.VmId, Ip, ["-n", plan.NetnsName, "link", "delete", VmNetworkPlan.NamespaceLink], null, ct).ConfigureAwait(false);
        var commands = new List<string>(2);
        if (hostHas)
            commands.Add($"link delete {plan.HostLink}");
        commands.Add($"link add {plan.HostLink} type veth peer name {VmNetworkPlan.NamespaceLink} netns {plan.NetnsName}");
        await HostIpBatchAsync(plan.VmId, commands, ct).ConfigureAwait(false);
        return true;
    }

    private async Task RollbackAsync(VmNetworkPlan plan, bool createdNetns, bool createdLink)
    {
        if (createdLink)
            await _runner.RunAsync(Ip, HostIp("link", "delete", plan.HostLink), null, CancellationToken.None).ConfigureAwait(false);
        if (createdNetns)
            await _runner.RunAsync(Ip, ["netns", "delete", plan.NetnsName], null, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task<bool> HostLinkExistsAsync(string vmId, string link, CancellationToken ct)
    {
        if (_hostNetns is not null && !NetnsThread.Exists(_hostNetns))
            return false;
        var r = await _runner.RunAsync(Ip, HostIp("link", "show", "dev", link), null, ct).ConfigureAwait(false);
        if (r.Ok)
            return true;
        if (r.Stderr.Contains("does not exist", StringComparison.Ordinal))
            return false;
        throw Failed(vmId, Ip, HostIp("link", "show", "dev", link), r);
    }

    private async Task<HashSet<string>> NamespaceLinksAsync(string vmId, string netns, CancellationToken ct)
    {
        var r = await RunAsync(vmId, Ip, ["-n", netns, "-o", "link", "show"], null, ct).ConfigureAwait(false);
        return [.. ParseLinkNames(r.Stdout)];
    }

    private Task HostIpBatchAsync(string vmId, IReadOnlyList<string> commands, CancellationToken ct) =>
        IpBatchAsync(vmId, _hostNetns, commands, ct);

    private Task IpBatchAsync(string vmId, string? netns, IReadOnlyList<string> commands, CancellationToken ct)
    {
        string[] args = netns is null ? ["-batch", "-"] : ["-n", netns, "-batch", "-"];
        return RunAsync(vmId, Ip, args, string.Join('\n', commands) + "\n", ct);
    }

    private string[] HostIp(params string[] args) => _hostNetns is null ? args : ["-n", _hostNetns, .. args];

    private async Task<CommandResult> RunAsync(string vmId, string file, IReadOnlyList<string> args, string? stdin, CancellationToken ct)
    {
        var r = await _runner.RunAsync(file, args, stdin, ct).ConfigureAwait(false);
        return r.Ok ? r : throw Failed(vmId, file, args, r, stdin);
    }

    private static VmsanException Failed(string vmId, string file, IReadOnlyList<string> args, CommandResult r, string? stdin = null)
    {
        var input = stdin is null || !args.Contains("-batch") ? "" : $" with commands [{stdin.Trim().Replace("\n", "; ", StringComparison.Ordinal)}]";
        return new VmsanException(ErrorCode.NetworkSetupFailed,
            string.Create(CultureInfo.InvariantCulture,
                $"Cannot set up the network of {vmId}: `{file} {string.Join(' ', args)}`{input} failed ({r.ExitCode}): {r.Stderr.Trim()}"),
            SetupFix);
    }

    private static VmsanException TeardownFailed(string vmId, string what, CommandResult r) =>
        new(ErrorCode.NetworkSetupFailed,
            string.Create(CultureInfo.InvariantCulture, $"Cannot remove the network of {vmId}: `{what}` failed ({r.ExitCode}): {r.Stderr.Trim()}"),
            "Run `vmsan doctor` to find and remove leftover namespaces and links.");
}
