using System.Diagnostics;
using System.Net;
using Vmsan.Core.Interop;
using Vmsan.Core.State;
using Vmsan.Network.Policy;

namespace Vmsan;

/// <summary>A VM's network as <c>vmsan network ID</c> shows it.</summary>
public sealed record NetworkStatus
{
    /// <summary>The VM id.</summary>
    public required string Id { get; init; }
    /// <summary>The VM's status.</summary>
    public required string Status { get; init; }
    /// <summary><c>allow-all</c>, <c>deny-all</c> or <c>custom</c>.</summary>
    public required string Policy { get; init; }
    /// <summary>Allowed domains (custom).</summary>
    public required string[] AllowedDomains { get; init; }
    /// <summary>Allowed CIDRs (custom).</summary>
    public required string[] AllowedCidrs { get; init; }
    /// <summary>Denied CIDRs.</summary>
    public required string[] DeniedCidrs { get; init; }
    /// <summary><c>[ADDR:]HOST:GUEST/PROTO</c> for each published port.</summary>
    public required string[] PublishedPorts { get; init; }

    /// <summary>True when the policy is in force in a running VM's namespace (a stopped VM gets it at its next start).</summary>
    public required bool Applied { get; init; }

    /// <summary>Packets refused since the VM started, per rule (<see cref="NftLayout.Counters"/>).</summary>
    public required Dictionary<string, long> Refusals { get; init; }

    /// <summary>After a change: milliseconds the nft transaction took, and established connections cut.</summary>
    public long? ApplyMs { get; init; }
    /// <summary>After a live change: conntrack entries deleted because the new policy refuses them.</summary>
    public int? ConnectionsCut { get; init; }
}

internal sealed partial class VmLifecycle
{
    public async Task<NetworkStatus> GetNetworkAsync(string id, CancellationToken ct = default)
    {
        RequireRoot();
        var rec = await ReconcileAsync(RequireId(id), ct).ConfigureAwait(false) ?? throw Core.Errors.VmsanException.NotFound(id);
        var netns = RunningNetns(rec);
        var counters = netns is null ? null : await _network.RefusalCountersAsync(netns, ct).ConfigureAwait(false);
        return Status(rec, NetworkPolicyState.PolicyOf(rec.Network), counters);
    }

    public async Task<NetworkStatus> ChangeNetworkPolicyAsync(string id, Func<NetworkPolicy, NetworkPolicy> change, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        RequireRoot();
        using (_store.LockVm(RequireId(id)))
        {
            var rec = await ReconcileLockedAsync(_store.Load(id), ct).ConfigureAwait(false);
            var old = NetworkPolicyState.PolicyOf(rec.Network);
            var next = change(old);
            long? applyMs = null;
            int? cut = null;
            var netns = RunningNetns(rec);
            if (netns is not null)
            {
                var sw = Stopwatch.StartNew();
                var flushPins = old.AllowedDomains.Except(next.AllowedDomains, StringComparer.Ordinal).Any();
                await _network.ApplyPolicyAsync(id, netns, next, rec.Network.Dns is { } dns ? IPAddress.Parse(dns) : null, flushPins, ct)
                    .ConfigureAwait(false);
                applyMs = sw.ElapsedMilliseconds;
                cut = await _network.CutDeniedConnectionsAsync(netns, next, ct).ConfigureAwait(false);
                Log($"{id}: policy {next} applied in {applyMs} ms; {cut} connection(s) cut");
            }
            rec = rec with { Network = rec.Network.WithPolicy(next) };
            _store.Save(rec);
            if (ProcessProbe.IsAlive(rec.Supervisor))
                LibcPublic.Signal(rec.Supervisor, LibcPublic.SIGHUP);
            var counters = netns is null ? null : await _network.RefusalCountersAsync(netns, ct).ConfigureAwait(false);
            return Status(rec, next, counters) with { ApplyMs = applyMs, ConnectionsCut = cut };
        }
    }

    /// <summary>The VMM's namespace handle while it runs (reachable from any mount namespace), else null.</summary>
    private static string? RunningNetns(VmRecord rec) =>
        rec.Status is VmStatus.Running or VmStatus.Starting && ProcessProbe.IsAlive(rec.Vmm) ? $"/proc/{rec.Vmm!.Pid}/ns/net" : null;

    private static NetworkStatus Status(VmRecord rec, NetworkPolicy policy, IReadOnlyDictionary<string, long>? counters) => new()
    {
        Id = rec.Id,
        Status = rec.Status.ToString().ToLowerInvariant(),
        Policy = policy.ModeName,
        AllowedDomains = [.. policy.AllowedDomains],
        AllowedCidrs = [.. policy.AllowedCidrs.Select(c => c.ToString())],
        DeniedCidrs = [.. policy.DeniedCidrs.Select(c => c.ToString())],
        PublishedPorts = [.. (rec.Network.PublishedPorts ?? []).Select(p => p.ToString())],
        Applied = counters is not null,
        Refusals = counters is null ? [] : new Dictionary<string, long>(counters, StringComparer.Ordinal),
    };
}
