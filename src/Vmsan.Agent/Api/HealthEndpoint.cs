using System.Diagnostics;
using System.Reflection;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Api;

/// <summary>GET /health, unauthenticated: the host polls it while the VM boots.</summary>
internal sealed class HealthEndpoint(string hostname)
{
    /// <summary>Changed by a snapshot clone's re-key.</summary>
    public string Hostname { get; set; } = hostname;

    private static readonly Stopwatch Uptime = Stopwatch.StartNew();

    public static string Version { get; } =
        typeof(HealthEndpoint).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Touches the stopwatch so uptime counts from agent start, not from the first request.</summary>
    public static void MarkStart() => _ = Uptime.ElapsedTicks;

    /// <summary>Milliseconds since Main started.</summary>
    public static long UptimeMs => Uptime.ElapsedMilliseconds;

    public ValueTask HandleAsync(RequestContext context) =>
        context.WriteJsonAsync(200, new HealthResponse("ok", Version, Hostname, UptimeMs, (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100),
            AgentJsonContext.Default.HealthResponse, context.ServerToken);
}
