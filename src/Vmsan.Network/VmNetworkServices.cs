using System.Net;
using Vmsan.Core.Errors;
using Vmsan.Network.Dns;
using Vmsan.Network.Logging;
using Vmsan.Network.Policy;
using Vmsan.Network.Proxy;

namespace Vmsan.Network;

/// <summary>
/// What the supervisor runs for a VM's network besides nftables: the DNS filter on the guest's
/// gateway (172.30.0.1:53, UDP and TCP) and the SNI/Host pinning proxy (172.30.0.1:15001), both
/// with sockets in the VM's namespace, sharing one pin table and one network log.
/// </summary>
public sealed class VmNetworkServices : IAsyncDisposable
{
    private readonly DnsFilter _filter;
    private readonly DnsFilterServer _dns;
    private readonly PinningProxy _proxy;
    private readonly PinTable _pins;
    private readonly IPinSink _sink;
    private readonly NetworkLog _log;
    private NflogReader? _refusals;
    private volatile NetworkPolicy _policy;
    private readonly IReadOnlyList<IPAddress> _hostAddresses;

    private VmNetworkServices(NetworkPolicy policy, IReadOnlyList<IPAddress> hostAddresses, DnsFilter filter, DnsFilterServer dns,
        PinningProxy proxy, PinTable pins, IPinSink sink, NetworkLog log)
    {
        _policy = policy;
        _hostAddresses = hostAddresses;
        _filter = filter;
        _dns = dns;
        _proxy = proxy;
        _pins = pins;
        _sink = sink;
        _log = log;
    }

    public NetworkPolicy Policy => _policy;

    /// <summary>Connections the proxy refused so far.</summary>
    public long ProxyRefused => _proxy.Refused;

    /// <summary>True while nftables' refusals (NFLOG group <see cref="NftLayout.LogGroup"/>) are read into the network log.</summary>
    public bool LogsRefusals => _refusals is not null;

    /// <param name="netns">The VM's namespace (name under /run/netns or /proc/PID/ns/net).</param>
    /// <param name="upstream">The resolver allowed names are forwarded to, from this process's namespace; null answers them SERVFAIL.</param>
    /// <param name="hostAddresses">Addresses of the namespace vmsan runs in: no answer or proxied connection may reach them.</param>
    /// <param name="sink">Where pinned addresses go (the VM's nft pin sets).</param>
    public static async Task<VmNetworkServices> StartAsync(string netns, NetworkPolicy policy, IPEndPoint? upstream,
        IReadOnlyList<IPAddress> hostAddresses, IPinSink sink, string logPath, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(hostAddresses);
        ArgumentNullException.ThrowIfNull(sink);
        var log = new NetworkLog(logPath);
        var pins = new PinTable();
        VmNetworkServices? self = null;
        // The always-denied set, unless the policy's CIDRs allow an address explicitly.
        bool Denied(IPAddress a)
        {
            var p = self?._policy ?? policy;
            a = a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
            if (p.DeniedCidrs.Any(c => c.Contains(a)))
                return true;
            if (p.Mode == NetworkPolicyMode.Custom && p.AllowedCidrs.Any(c => c.Contains(a)))
                return false;
            return AlwaysDenied.Contains(a, hostAddresses);
        }

        var filter = new DnsFilter(policy.ForDns(), Denied);
        DnsFilterServer? dns = null;
        try
        {
            var gateway = VmNetworkPlan.GatewayAddress;
            dns = await DnsFilterServer.StartAsync(netns, new IPEndPoint(gateway, NftLayout.DnsPort), filter,
                upstream is null ? new NoUpstream() : new DnsUpstream(upstream), pins, sink, log, ct).ConfigureAwait(false);
            var proxy = await PinningProxy.StartAsync(netns, new IPEndPoint(gateway, NftLayout.ProxyPort), pins,
                () => filter.Policy, Denied, log, ct: ct).ConfigureAwait(false);
            self = new VmNetworkServices(policy, hostAddresses, filter, dns, proxy, pins, sink, log);
            try
            {
                self._refusals = await NflogReader.StartAsync(netns, NftLayout.LogGroup, p => log.Append(RefusalEvent(p, pins)),
                    e => log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "refused", "failed", Rule: e))).ConfigureAwait(false);
            }
            catch (VmsanException ex)
            {
                // Not fatal: the VM's refusals are still enforced and counted (`vmsan network`), only not logged.
                log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "refused", "failed", Rule: ex.Message));
            }
            return self;
        }
        catch
        {
            if (dns is not null)
                await dns.DisposeAsync().ConfigureAwait(false);
            log.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Puts a new policy in force for DNS and the proxy (nftables was changed first by <c>vmsan network</c>).
    /// Pins of removed domains are forgotten; when the change flushed the kernel's pin sets, the
    /// remaining pins are put back so connections to still-allowed names keep working.
    /// </summary>
    public async Task ApplyAsync(NetworkPolicy policy, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var old = _policy;
        var removed = old.AllowedDomains.Except(policy.AllowedDomains, StringComparer.OrdinalIgnoreCase).Any();
        _policy = policy;
        _filter.Policy = policy.ForDns();
        var back = _pins.Retain(policy.Mode == NetworkPolicyMode.Custom ? policy.AllowedDomains : [], kernelFlushed: removed);
        if (back.Count > 0)
        {
            try
            {
                await _sink.AddAsync(back, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _pins.KernelFailed(back);
                _log.Append(new NetworkEvent(DateTimeOffset.UtcNow, "dns", "failed", Rule: "re-pin after policy change: " + ex.Message));
            }
        }
    }

    /// <summary>
    /// A packet nftables refused, as a network-log line: its destination, protocol, the refusal rule
    /// (the counter it was counted in, from the log prefix) and, when the address is pinned for an
    /// allowed domain, that allowlist entry.
    /// </summary>
    public static NetworkEvent RefusalEvent(NflogPacket packet, PinTable? pins = null)
    {
        ArgumentNullException.ThrowIfNull(packet);
        var s = packet.Summary;
        var type = s is null ? null
            : s.IcmpType is { } t ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{s.Protocol} type {t} code {s.IcmpCode}")
            : s.Protocol;
        // Delivered at once (queue threshold 1), so now is the refusal's time; the kernel's stamp is
        // used only when it is plausible (forwarded packets may carry a monotonic one).
        var now = DateTimeOffset.UtcNow;
        var time = packet.Time is { } k && (k - now).Duration() < TimeSpan.FromSeconds(5) ? k : now;
        return new NetworkEvent(time, "refused", "refused",
            Name: s is null ? null : pins?.AnyRuleFor(s.Destination), Type: type, Dst: s?.DestinationText, Rule: packet.Prefix ?? "unknown");
    }

    public async ValueTask DisposeAsync()
    {
        _refusals?.Dispose();
        await _proxy.DisposeAsync().ConfigureAwait(false);
        await _dns.DisposeAsync().ConfigureAwait(false);
        _log.Dispose();
    }

    private sealed class NoUpstream : IDnsUpstream
    {
        public Task<DnsMessage?> QueryAsync(DnsMessage query, CancellationToken ct) => Task.FromResult<DnsMessage?>(null);
    }
}

/// <summary>Pins go into the VM's nft sets with <c>nft -f</c> in its namespace (one transaction per answer).</summary>
public sealed class NftPinSink(VmNetworkManager manager, string vmId, string netns) : IPinSink
{
    public async Task AddAsync(IReadOnlyList<PinElement> elements, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(elements);
        var script = NftPins.AddScript(elements.Select(e => (e.Address, e.Timeout)));
        if (script.Length > 0)
            await manager.RunNftInVmAsync(vmId, netns, script, ct).ConfigureAwait(false);
    }
}
