using System.Globalization;
using System.Net;

namespace Vmsan.Agent.Http;

/// <summary>Bounds on what one client may make the agent hold.</summary>
internal sealed record HttpLimits
{
    /// <summary>Request line plus headers.</summary>
    public int MaxHeadBytes { get; init; } = 16 * 1024;

    public int MaxHeaderCount { get; init; } = 100;

    /// <summary>Default cap for buffered request bodies (JSON).</summary>
    public int MaxBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>How long a keep-alive connection may sit idle between requests (after its first request).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long one read of a started request body may wait.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Total time a request head may take, from its first byte (for a connection's first request: from accept), however
    /// the bytes trickle in: a slowloris client cannot hold a connection with a byte now and then.
    /// <c>VMSAN_AGENT_HEAD_TIMEOUT_MS</c> in host mode.
    /// </summary>
    public TimeSpan HeadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Connections served at once. At the cap a new connection evicts the oldest one that has not yet sent a complete
    /// request head (so the host always gets a slot); when every connection is busy with a request, the new one is
    /// closed. <c>VMSAN_AGENT_MAX_CONNECTIONS</c> in host mode.
    /// </summary>
    public int MaxConnections { get; init; } = 256;

    /// <summary>
    /// When set, connections from any other address are closed at once. The guest's agent allows only the host's side of
    /// the guest link (the gateway, 172.30.0.1: the host connects from inside the VM's namespace), so processes in the
    /// guest (127.0.0.1, the guest's own address) never reach it. <c>VMSAN_AGENT_ALLOWED_PEER</c> in host mode.
    /// </summary>
    public IPAddress? AllowedPeer { get; init; }

    /// <summary>The defaults, with the host-mode overrides of the environment (tests).</summary>
    public static HttpLimits FromEnvironment()
    {
        var limits = new HttpLimits();
        if (int.TryParse(AgentEnvironment.HeadTimeoutMs, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms > 0)
        {
            limits = limits with { HeadTimeout = TimeSpan.FromMilliseconds(ms) };
        }

        if (int.TryParse(AgentEnvironment.MaxConnections, NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max > 0)
        {
            limits = limits with { MaxConnections = max };
        }

        if (IPAddress.TryParse(AgentEnvironment.AllowedPeer, out var peer))
        {
            limits = limits with { AllowedPeer = peer };
        }

        return limits;
    }
}
