using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Vmsan.IntegrationTests.Infrastructure;

/// <summary>
/// A throwaway world for one test class: a "host" network namespace
/// in which the vmsan CLI runs, an "uplink" namespace standing in for the internet (198.18.0.1,
/// a test-owned address that exists only there), and a private VMSAN_HOME. Everything is removed
/// by name on dispose, and the test can assert that no VM left anything behind.
/// </summary>
public sealed class VmsanWorld : IAsyncLifetime
{
    public const string UplinkAddress = "198.18.0.1";
    public const string HostAddress = "198.18.0.2";

    private readonly string _tag = Sh.Rand();

    /// <summary>
    /// The suite boots cold (VMSAN_WARM=0, inherited by every vmsan it runs) unless the runner sets VMSAN_WARM itself:
    /// most classes test what a real boot does (console, clock, crashes mid-boot, confinement), and a boot snapshot per
    /// class would cost each one a capture. WarmCreateTests ask for warm creates explicitly (<see cref="Warm"/>).
    /// </summary>
    static VmsanWorld()
    {
        if (Environment.GetEnvironmentVariable("VMSAN_WARM") is null)
            Environment.SetEnvironmentVariable("VMSAN_WARM", "0");
    }

    /// <summary>Warm create on for the vmsan this world runs (<see cref="Vmsan"/> and friends), as a user's vmsan has it by default.</summary>
    public bool Warm { get; set; }

    /// <summary>An assets directory of the test's own for the vmsan this world runs (default: the runner's VMSAN_ASSETS).</summary>
    public string? Assets { get; set; }

    public Dictionary<string, string> Env()
    {
        var env = new Dictionary<string, string> { ["VMSAN_HOME"] = Home, ["VMSAN_CLI"] = Cli };
        if (Warm)
            env["VMSAN_WARM"] = "1";
        if (Assets is not null)
            env["VMSAN_ASSETS"] = Assets;
        return env;
    }

    public string HostNs => $"vt-host-{_tag}";
    public string UplinkNs => $"vt-up-{_tag}";
    public string Home { get; } = Path.Combine(Path.GetTempPath(), "vmsan-test-" + Guid.NewGuid().ToString("N")[..8]);
    public static string Cli => Environment.GetEnvironmentVariable("VMSAN_CLI") is { Length: > 0 } c ? c : "/usr/local/bin/vmsan";

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(Home);
        await Sh.Check($"""
            set -e
            ip netns add {HostNs}
            ip netns add {UplinkNs}
            ip -n {HostNs} link set lo up
            ip -n {UplinkNs} link set lo up
            ip link add vth-{_tag} netns {HostNs} type veth peer name vtu-{_tag} netns {UplinkNs}
            ip -n {HostNs} addr add {HostAddress}/24 dev vth-{_tag}
            ip -n {UplinkNs} addr add {UplinkAddress}/24 dev vtu-{_tag}
            ip -n {HostNs} link set vth-{_tag} up
            ip -n {UplinkNs} link set vtu-{_tag} up
            ip -n {HostNs} route add default via {UplinkAddress}
            """);
    }

    /// <summary>Runs <c>vmsan ARGS</c> inside the host namespace with this world's VMSAN_HOME.</summary>
    public Task<ProcResult> Vmsan(params string[] args) => VmsanWithTimeout(TimeSpan.FromMinutes(4), args);

    public Task<ProcResult> VmsanWithTimeout(TimeSpan timeout, params string[] args) =>
        Sh.RunAsync("ip", ["netns", "exec", HostNs, Cli, .. args], Env(), timeout);

    public Task<ProcResult> VmsanStdin(string stdin, params string[] args) =>
        Sh.RunAsync("ip", ["netns", "exec", HostNs, Cli, .. args], Env(), TimeSpan.FromMinutes(4), stdin);

    /// <summary>
    /// Starts <c>vmsan ARGS</c> inside the host namespace with this world's environment and returns at once (stdout
    /// and stderr redirected), for tests that signal or kill it mid-way. Its pid is vmsan's (env and ip netns exec
    /// exec, they do not fork). <c>env --default-signal=INT</c>: a test run started in the background of a
    /// non-interactive shell (<c>./test.sh &amp;</c>) inherits SIGINT as ignored, and an ignored SIGINT stays ignored
    /// across exec, so vmsan would never see a Ctrl-C; a user's terminal gives vmsan the default disposition, and so
    /// does this.
    /// </summary>
    public System.Diagnostics.Process StartVmsan(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("env") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--default-signal=INT", "ip", "netns", "exec", HostNs, Cli, .. args])
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in Env())
            psi.Environment[k] = v;
        return System.Diagnostics.Process.Start(psi)!;
    }

    /// <summary>Runs vmsan and returns its stdout as raw bytes (binary-safe).</summary>
    public async Task<byte[]> VmsanBytes(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", HostNs, Cli, .. args])
            psi.ArgumentList.Add(a);
        psi.Environment["VMSAN_HOME"] = Home;
        using var p = System.Diagnostics.Process.Start(psi)!;
        using var ms = new MemoryStream();
        await p.StandardOutput.BaseStream.CopyToAsync(ms);
        await p.WaitForExitAsync();
        return ms.ToArray();
    }

    public async Task<JsonElement> VmsanJson(params string[] args)
    {
        var r = await Vmsan([.. args, "--json"]);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"vmsan {string.Join(' ', args)} failed: {r}");
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    public async Task<string> CreateVm(params string[] extra)
    {
        var vm = await VmsanJson(["create", "--memory", "256", .. extra]);
        return vm.GetProperty("id").GetString()!;
    }

    public JsonElement? State(string id)
    {
        var f = Path.Combine(Home, "vms", id, "vm.json");
        return File.Exists(f) ? JsonDocument.Parse(File.ReadAllText(f)).RootElement.Clone() : null;
    }

    /// <summary>Every trace a VM could leave: namespace, host link, VMM process, state directory.</summary>
    public async Task<List<string>> Leftovers(string id)
    {
        var suffix = id[3..];
        var found = new List<string>();
        var netns = await Sh.Bash("ip netns list");
        if (netns.Stdout.Contains($"vmsan-{suffix}", StringComparison.Ordinal))
            found.Add($"netns vmsan-{suffix}");
        var links = await Sh.Bash($"ip -n {HostNs} -o link show");
        if (links.Stdout.Contains($"vsn-{suffix}", StringComparison.Ordinal))
            found.Add($"link vsn-{suffix}");
        var procs = await Sh.Bash($"pgrep -af -- '{id}' | grep -v pgrep || true");
        if (procs.Stdout.Trim().Length > 0)
            found.Add($"processes: {procs.Stdout.Trim()}");
        if (Directory.EnumerateFiles("/dev/shm", $"vmsan-*-{id}.mem").Any())
            found.Add($"guest RAM file /dev/shm/vmsan-*-{id}.mem");
        if (Directory.Exists(Path.Combine(Home, "vms", id)))
            found.Add($"state dir {id}");
        return found;
    }

    /// <summary>A one-shot TCP server in the uplink namespace: replies with what it saw as the peer address.</summary>
    public async Task<(Task<string> Peer, int Port)> UplinkEchoServer()
    {
        var listener = await NamespaceSockets.ListenAsync(UplinkNs, new IPEndPoint(IPAddress.Parse(UplinkAddress), 0));
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var task = Task.Run(async () =>
        {
            using (listener)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                using var s = await listener.AcceptAsync(cts.Token);
                var peer = ((IPEndPoint)s.RemoteEndPoint!).Address.ToString();
                await s.SendAsync(Encoding.ASCII.GetBytes($"hello {peer}\n"), SocketFlags.None);
                s.Shutdown(SocketShutdown.Both);
                return peer;
            }
        });
        return (task, port);
    }

    public async ValueTask DisposeAsync()
    {
        var leaks = new List<string>();
        try
        {
            var list = await Vmsan("list", "--json");
            if (list.ExitCode == 0)
                foreach (var vm in JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray())
                {
                    var id = vm.GetProperty("id").GetString()!;
                    await Vmsan("rm", "-f", id);
                    leaks.AddRange(await Leftovers(id));
                }
        }
        finally
        {
            await Sh.Bash($"ip netns del {HostNs}; ip netns del {UplinkNs}; true");
            try
            {
                Directory.Delete(Home, true);
            }
            catch (IOException)
            {
            }
        }
        // Whatever a test class leaves, `rm -f` must clean: a leak here fails the class.
        if (leaks.Count > 0)
            throw new InvalidOperationException("VMs left traces after rm -f: " + string.Join("; ", leaks));
    }
}
