namespace Vmsan.Agent.Http;

/// <summary>Bounds on what one client may make the agent hold.</summary>
internal sealed record HttpLimits
{
    /// <summary>Request line plus headers.</summary>
    public int MaxHeadBytes { get; init; } = 16 * 1024;

    public int MaxHeaderCount { get; init; } = 100;

    /// <summary>Default cap for buffered request bodies (JSON).</summary>
    public int MaxBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>How long a keep-alive connection may sit idle between requests.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a started request head or body may take to arrive.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
