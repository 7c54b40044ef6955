using System.Globalization;

namespace Vmsan.Agent.Files;

/// <summary>Limits and sources of the files endpoints; overridable through the agent's environment (tests, host mode).</summary>
internal sealed record FilesOptions
{
    /// <summary>Largest upload body (413 beyond). <c>VMSAN_FILES_MAX_UPLOAD_BYTES</c>.</summary>
    public long MaxUploadBytes { get; init; } = 64L * 1024 * 1024 * 1024;

    /// <summary>Uploads and downloads running at once (429 beyond). <c>VMSAN_FILES_MAX_TRANSFERS</c>.</summary>
    public int MaxConcurrentTransfers { get; init; } = 8;

    public static FilesOptions FromEnvironment()
    {
        var options = new FilesOptions();
        if (long.TryParse(AgentEnvironment.FilesMaxUploadBytes, NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max > 0)
        {
            options = options with { MaxUploadBytes = max };
        }

        if (int.TryParse(AgentEnvironment.FilesMaxTransfers, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            options = options with { MaxConcurrentTransfers = n };
        }

        return options;
    }
}
