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
    public EgressPolicy? NetworkPolicy { get; init; }

    /// <summary>The clone's published ports instead of the source's (null: the source's; empty: none).</summary>
    public IReadOnlyList<PortMapping>? PublishedPorts { get; init; }

    /// <summary>The ports as the network code has them (null: the source's).</summary>
    internal IReadOnlyList<PublishedPort>? Ports => PublishedPorts is { } p ? [.. p.Select(x => x.ToCore())] : null;

    /// <summary>Checks every value before anything is created.</summary>
    /// <exception cref="Errors.VmsanException">INVALID_ARGUMENT, naming the bad value.</exception>
    public void Validate() => Errors.PublicErrors.Run(Check);

    /// <summary>As <see cref="Validate"/>, failing with the implementation's exception (for the lifecycle's own calls).</summary>
    internal void Check()
    {
        TimeoutAction.Validate(Timeout, OnTimeout, explicitAction: OnTimeout != TimeoutAction.Stop);
        if (Ports is { } ports)
            PortSpec.CheckDistinct(ports);
    }
}
