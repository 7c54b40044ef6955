using Vmsan.Runtimes;

namespace Vmsan;

public sealed partial class VmsanClient
{
    /// <summary>The runtimes this installation has recipes for, with their build state.</summary>
    public IReadOnlyList<RuntimeInfo> ListRuntimes()
    {
        var catalog = new RuntimeCatalog(_options.Paths);
        return catalog.Names().Select(catalog.Info).ToList();
    }

    /// <summary>
    /// Builds runtime <paramref name="name"/> from its recipe (Debian packages, npm packages), unless the
    /// image was built from the same recipe, agent and base. Atomic: a failed or killed build leaves the
    /// previous image in use. The build's log lines go to <paramref name="progress"/>.
    /// </summary>
    public Task<RuntimeInfo> BuildRuntimeAsync(string name, Action<string>? progress = null, CancellationToken ct = default)
    {
        RequireRoot();
        return new RuntimeCatalog(_options.Paths).BuildAsync(name, progress, ct);
    }
}
