using System.Globalization;
using System.Net;
using Vmsan.Agent.Api;
using Vmsan.Agent.Exec;
using Vmsan.Agent.Files;
using Vmsan.Agent.Http;
using Vmsan.Agent.Init;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Sessions;
using Vmsan.Agent.Users;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent;

/// <summary>
/// vmsan-agent. As PID 1 (the guest's init) it does the init duties and serves 0.0.0.0:9119. Otherwise
/// (host and tests): <c>vmsan-agent --listen 127.0.0.1:0 --token-file PATH [--hostname NAME] [--verbose]</c>.
/// </summary>
internal static class Program
{
    private const string Usage = "usage: vmsan-agent --listen ADDR:PORT --token-file PATH [--hostname NAME] [--verbose] [--max-execs N] [--max-sessions N] [--max-viewers N]";

    public static async Task<int> Main(string[] args)
    {
        HealthEndpoint.MarkStart();
        var isInit = Libc.GetPid() == 1;
        try
        {
            return isInit ? await RunAsInitAsync(args).ConfigureAwait(false) : await RunHostedAsync(args).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            AgentLog.Error($"fatal: {e}");
            if (isInit)
            {
                // Exiting PID 1 panics the kernel; with panic=1 the VM resets, which the supervisor sees.
                Thread.Sleep(1000);
            }

            return 1;
        }
    }

    private static async Task<int> RunAsInitAsync(string[] args)
    {
        AgentLog.Verbose = args.Contains("--verbose");
        Clock.GuestClock.Enabled = true;
        var config = GuestInit.Run();
        var reaper = new ProcessReaper();
        reaper.Start();
        if (string.IsNullOrEmpty(config.Token))
        {
            AgentLog.Error("no VMSAN_TOKEN: every authenticated call will be refused");
        }

        HttpServer? server = null;
        var sessions = new SessionManager(reaper, new UserDatabase(), new AgentLimits());
        var exec = new ExecEndpoint(sessions);
        var router = BuildRouter(config.Token, config.Id ?? Environment.MachineName, exec, sessions, () =>
        {
            server?.Stop();
            GuestInit.PowerOff(reaper);
        });
        OpenFilesLimit.Raise(asInit: true);
        // Only the host's side of the guest link is served: guest processes (loopback, the guest's own address) are not.
        var gateway = IPAddress.TryParse(config.Values.GetValueOrDefault(GuestConfigKeys.Gateway), out var gw) ? gw : IPAddress.Parse(AgentProtocol.GatewayAddress);
        server = new HttpServer(new IPEndPoint(IPAddress.Any, AgentProtocol.Port), router, new HttpLimits { AllowedPeer = gateway });
        AgentLog.Marker("vmsan-agent: ready" + BootTimes());
        GuestInit.GrowRootInBackground();
        await server.RunAsync().ConfigureAwait(false);
        // Only a shutdown stops the server; PowerOff never returns.
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }

    /// <summary>
    /// " (kernel+initramfs N ms, runtime start N ms, init N ms)": guest uptime when /init handed
    /// over, how long the runtime took to reach Main, and Main to listening. Boot time under emulation is dominated by
    /// first-run code; these numbers say where it went.
    /// </summary>
    private static string BootTimes()
    {
        try
        {
            // /init exports its uptime right before exec'ing us (PID 1 keeps the kernel's start time).
            if (!double.TryParse(AgentEnvironment.T0, NumberStyles.Float, CultureInfo.InvariantCulture, out var t0))
                return "";
            var uptimeMs = double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], CultureInfo.InvariantCulture) * 1000;
            var sinceMain = HealthEndpoint.UptimeMs;
            var runtime = uptimeMs - sinceMain - (t0 * 1000);
            return string.Create(CultureInfo.InvariantCulture, $" (kernel+initramfs {t0 * 1000:0} ms, runtime start {Math.Max(0, runtime):0} ms, init {sinceMain} ms)");
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return "";
        }
    }

    private static async Task<int> RunHostedAsync(string[] args)
    {
        string? listen = null, tokenFile = null, hostname = null;
        var limits = new AgentLimits();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            switch (args[i])
            {
                case "--listen": listen = Next(); break;
                case "--token-file": tokenFile = Next(); break;
                case "--hostname": hostname = Next(); break;
                case "--verbose": AgentLog.Verbose = true; break;
                case "--max-execs": limits = limits with { MaxExecs = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--max-sessions": limits = limits with { MaxSessions = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--max-viewers": limits = limits with { MaxViewers = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                default: throw new ArgumentException($"unknown argument {args[i]}\n{Usage}");
            }
        }

        if (listen is null || tokenFile is null || !IPEndPoint.TryParse(listen, out var endPoint))
        {
            AgentLog.Error(Usage);
            return 2;
        }

        var token = File.ReadAllText(tokenFile).Trim();
        // Orphaned grandchildren come back to us to be reaped, as they would to PID 1 in the guest.
        if (Libc.Prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1)
        {
            AgentLog.Warn($"PR_SET_CHILD_SUBREAPER: {Libc.StrError(Libc.LastErrno)}");
        }

        var reaper = new ProcessReaper();
        reaper.Start();
        var sessions = new SessionManager(reaper, new UserDatabase(), limits);
        var exec = new ExecEndpoint(sessions);
        HttpServer? server = null;
        var router = BuildRouter(token, hostname ?? Environment.MachineName, exec, sessions, () =>
        {
            AgentLog.Info("shutdown requested: exiting (host mode, no power-off)");
            sessions.KillAll();
            server?.Stop();
        });
        OpenFilesLimit.Raise(asInit: false);
        server = new HttpServer(endPoint, router, HttpLimits.FromEnvironment());
        AgentLog.Marker(string.Create(CultureInfo.InvariantCulture, $"vmsan-agent: listening on {server.LocalEndPoint.Port}"));
        await server.RunAsync().ConfigureAwait(false);
        return 0;
    }

    private static Router BuildRouter(string? token, string hostname, ExecEndpoint exec, SessionManager sessions, Action shutdown)
    {
        var health = new HealthEndpoint(hostname);
        var shutdownEndpoint = new ShutdownEndpoint(shutdown);
        var execStream = new ExecStreamEndpoint(sessions);
        var execs = new ExecsEndpoint(sessions);
        var files = new FilesEndpoint(FilesOptions.FromEnvironment(), sessions.Users);
        var auth = new TokenAuthenticator(token);
        var rekey = new RekeyEndpoint(auth, health, sessions);
        return new Router(auth)
            .Map("GET", AgentProtocol.Paths.Health, health.HandleAsync, authenticated: false)
            .Map("POST", AgentProtocol.Paths.Rekey, rekey.HandleAsync)
            .Map("POST", AgentProtocol.Paths.Exec, exec.HandleAsync)
            .Map("GET", AgentProtocol.Paths.ExecStream, execStream.HandleExecAsync)
            .Map("GET", AgentProtocol.Paths.ExecAttach, execStream.HandleAttachAsync)
            .Map("POST", AgentProtocol.Paths.Execs, execs.StartAsync)
            .Map("GET", AgentProtocol.Paths.Execs, execs.ListAsync)
            .Map("POST", AgentProtocol.Paths.ExecsSignal, execs.SignalAsync)
            .Map("POST", AgentProtocol.Paths.Clock, Clock.GuestClock.HandleAsync)
            .Map("POST", AgentProtocol.Paths.Shutdown, shutdownEndpoint.HandleAsync)
            .Map("PUT", FilesProtocol.Path, files.UploadAsync)
            .Map("GET", FilesProtocol.Path, files.DownloadAsync);
    }
}
