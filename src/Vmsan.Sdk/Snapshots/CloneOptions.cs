using Vmsan.Core.State;
using Vmsan.Network.Policy;
using Vmsan.Network.Ports;

namespace Vmsan;

/// <summary>
/// What a clone (<see cref="VmsanClient.CreateFromSnapshotAsync(string, CloneOptions, CancellationToken)"/>) takes
/// from the caller instead of its snapshot. A null policy or port list means the snapshot's source's own, re-applied
/// in the clone's namespace; sizes, runtime, kernel and confinement always come from the snapshot (its memory and
/// devices were saved with them).
/// </summary>
public sealed record CloneOptions
{
    /// <summary>The clone's lifetime from now (null: none), as <see cref="CreateOptions.Timeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary><c>stop</c>, <c>pause</c> or <c>remove</c>.</summary>
    public string OnTimeout { get; init; } = TimeoutAction.Stop;

    /// <summary>The clone's egress policy instead of the source's (null: the source's).</summary>
    public NetworkPolicy? NetworkPolicy { get; init; }

    /// <summary>The clone's published ports instead of the source's (null: the source's; empty: none).</summary>
    public IReadOnlyList<PublishedPort>? PublishedPorts { get; init; }

    /// <summary>Checks every value before anything is created; throws INVALID_ARGUMENT.</summary>
    public void Validate()
    {
        TimeoutAction.Validate(Timeout, OnTimeout, explicitAction: OnTimeout != TimeoutAction.Stop);
        if (PublishedPorts is { } ports)
            PortSpec.CheckDistinct(ports);
    }
}
