using System.Globalization;

namespace Vmsan.Vmm;

/// <summary>
/// VMM tuning that the environment may override, read once at the edge (<c>VmsanClientOptions</c>) and passed in:
/// QEMU's TCG translation cache and CPU model, and what a VMM may use beyond its guest's RAM.
/// </summary>
public sealed record VmmSettings
{
    /// <summary>Translation cache size under TCG (MiB; <c>VMSAN_TCG_TB_SIZE</c>). Bigger caches stop QEMU re-translating the agent's start-up code.</summary>
    public int TcgTbSizeMib { get; init; } = 64;

    /// <summary>CPU model under TCG (<c>VMSAN_TCG_CPU</c>).</summary>
    public string TcgCpu { get; init; } = "max";

    /// <summary>A fixed VMM memory overhead (MiB; <c>VMSAN_VMM_MEMORY_OVERHEAD_MIB</c>) instead of the measured default.</summary>
    public int? MemoryOverheadMib { get; init; }

    /// <summary>The defaults with what <paramref name="env"/> overrides; unparsable values keep the default.</summary>
    public static VmmSettings From(Vmsan.Core.VmsanEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var d = new VmmSettings();
        return d with
        {
            TcgTbSizeMib = int.TryParse(env.TcgTbSize, NumberStyles.None, CultureInfo.InvariantCulture, out var tb) && tb > 0 ? tb : d.TcgTbSizeMib,
            TcgCpu = env.TcgCpu is { Length: > 0 } cpu ? cpu : d.TcgCpu,
            MemoryOverheadMib = int.TryParse(env.VmmMemoryOverheadMib, NumberStyles.None, CultureInfo.InvariantCulture, out var o) ? o : null,
        };
    }
}
