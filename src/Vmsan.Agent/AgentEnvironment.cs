namespace Vmsan.Agent;

/// <summary>
/// Every environment variable the guest agent reads, read here and nowhere else (a unit test scans the sources): its
/// limits' host-mode overrides (tests) and the boot time /init exports. The agent is its own program (PID 1 in the
/// guest, no host assemblies), so it has its own edge type.
/// </summary>
internal static class AgentEnvironment
{
    private static string? Value(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary><c>VMSAN_T0</c>: the guest's uptime (seconds) when /init exec'd the agent.</summary>
    public static string? T0 => Value("VMSAN_T0");

    /// <summary><c>VMSAN_FILES_MAX_UPLOAD_BYTES</c>.</summary>
    public static string? FilesMaxUploadBytes => Value("VMSAN_FILES_MAX_UPLOAD_BYTES");

    /// <summary><c>VMSAN_FILES_MAX_TRANSFERS</c>.</summary>
    public static string? FilesMaxTransfers => Value("VMSAN_FILES_MAX_TRANSFERS");

    /// <summary><c>VMSAN_AGENT_HEAD_TIMEOUT_MS</c>.</summary>
    public static string? HeadTimeoutMs => Value("VMSAN_AGENT_HEAD_TIMEOUT_MS");

    /// <summary><c>VMSAN_AGENT_MAX_CONNECTIONS</c>.</summary>
    public static string? MaxConnections => Value("VMSAN_AGENT_MAX_CONNECTIONS");

    /// <summary><c>VMSAN_AGENT_ALLOWED_PEER</c>.</summary>
    public static string? AllowedPeer => Value("VMSAN_AGENT_ALLOWED_PEER");
}
