using Vmsan.Runtimes;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    public IReadOnlyList<RuntimeInfo> ListRuntimes()
    {
        var catalog = new RuntimeCatalog(_options.Paths);
        return catalog.Names().Select(catalog.Info).ToList();
    }

    public Task<RuntimeInfo> BuildRuntimeAsync(string name, Action<string>? progress = null, CancellationToken ct = default)
    {
        RequireRoot();
        return new RuntimeCatalog(_options.Paths).BuildAsync(name, progress, ct);
    }
}
