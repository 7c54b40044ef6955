using System.Globalization;

namespace Vmsan.Agent.Files;

/// <summary>Limits and sources of the files endpoints; overridable through the agent's environment (tests, host mode).</summary>
internal sealed record FilesOptions
{
    /// <summary>Largest upload body (413 beyond). <c>VMSAN_FILES_MAX_UPLOAD_BYTES</c>.</summary>
    public long MaxUploadBytes { get; init; } = 64L * 1024 * 1024 * 1024;

    /// <summary>Uploads and downloads running at once (429 beyond). <c>VMSAN_FILES_MAX_TRANSFERS</c>.</summary>
    public int MaxConcurrentTransfers { get; init; } = 8;

    /// <summary>Where accounts are looked up. <c>VMSAN_FILES_PASSWD</c>.</summary>
    public string PasswdPath { get; init; } = "/etc/passwd";

    /// <summary>The user files belong to when a request names none (when the passwd file has it; else root).</summary>
    public string DefaultUser { get; init; } = "user";

    public static FilesOptions FromEnvironment()
    {
        var options = new FilesOptions();
        if (long.TryParse(Environment.GetEnvironmentVariable("VMSAN_FILES_MAX_UPLOAD_BYTES"), NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max > 0)
        {
            options = options with { MaxUploadBytes = max };
        }

        if (int.TryParse(Environment.GetEnvironmentVariable("VMSAN_FILES_MAX_TRANSFERS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            options = options with { MaxConcurrentTransfers = n };
        }

        if (Environment.GetEnvironmentVariable("VMSAN_FILES_PASSWD") is { Length: > 0 } passwd)
        {
            options = options with { PasswdPath = passwd };
        }

        return options;
    }
}
