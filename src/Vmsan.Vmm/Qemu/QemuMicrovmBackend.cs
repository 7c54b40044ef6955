using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Vmsan.Core.Errors;

namespace Vmsan.Vmm.Qemu;

/// <summary>
/// QEMU's <c>microvm</c> machine: no PCI, no firmware beyond qboot, virtio-mmio devices. Started
/// inside the VM's network namespace (so it can open the namespace's TAP) and driven over QMP.
/// </summary>
public sealed class QemuMicrovmBackend : IVmmBackend
{
    public const string DefaultBinary = "qemu-system-x86_64";

    private readonly string _binary;
    private readonly string? _cacheDir;

    /// <param name="binary">The QEMU binary (looked up on PATH when it has no '/').</param>
    /// <param name="cacheDir">Where its <c>--version</c> output is remembered (<see cref="QemuVersionCache"/>); null: run it each time.</param>
    public QemuMicrovmBackend(string? binary = null, string? cacheDir = null)
    {
        _binary = binary ?? DefaultBinary;
        _cacheDir = cacheDir;
    }

    public const string BackendName = "qemu-microvm";

    public string Name => BackendName;

    public string? CheckAvailable() =>
        FindOnPath(_binary) is null ? $"{_binary} not found on PATH" : null;

    public static string? FindOnPath(string binary)
    {
        if (binary.Contains('/', StringComparison.Ordinal))
            return File.Exists(binary) ? binary : null;
        foreach (var dir in (Vmsan.Core.VmsanEnvironment.Current.SearchPath ?? "/usr/bin:/bin").Split(':'))
        {
            var p = Path.Combine(dir, binary);
            if (File.Exists(p))
                return p;
        }
        return null;
    }

    /// <summary>The full argument vector (without the binary). Pure: unit-tested.</summary>
    public static List<string> BuildArgs(VmLaunchSpec spec) => QemuCommandLine.BuildArgs(spec);

    /// <summary>What this QEMU's <c>--version</c> prints (remembered per binary), or null when it cannot be run.</summary>
    public string? VersionOutput() => FindOnPath(_binary) is { } qemu ? QemuVersionCache.Output(qemu, _cacheDir) : null;

    /// <summary>This QEMU's version (from <c>--version</c>), or null when it cannot be read.</summary>
    public Version? DetectVersion() => VersionOutput() is { } text ? QemuCommandLine.ParseVersion(text) : null;

    private static int LastCapability() =>
        int.TryParse(File.ReadAllText("/proc/sys/kernel/cap_last_cap").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 40;

    public async Task<VmmProcess> LaunchAsync(VmLaunchSpec spec, CancellationToken ct)
    {
        var qemu = FindOnPath(_binary) ?? throw new VmsanException(ErrorCode.QemuNotFound, $"{_binary} is not installed.",
            "Run ./install.sh, or `apt-get install qemu-system-x86`.");
        var c = spec.Confinement;
        var syntax = c.Jail is not null || c.Uid is not null
            ? QemuCommandLine.SyntaxFor(DetectVersion() ?? new Version(7, 2))
            : QemuPrivilegeSyntax.Legacy;
        if (c.Uid is not null && FindOnPath("capsh") is null)
            throw new VmsanException(ErrorCode.DependencyMissing, "capsh is not installed: the VMM cannot be started without capabilities.",
                "Run `apt-get install libcap2-bin` (./install.sh does), or create the VM with --no-drop-privileges.");
        // Every step (sh, ip netns exec, capsh) execs the next, so the pid we get is QEMU's own.
        var argv = QemuCommandLine.BuildArgv(spec, qemu, syntax, c.Uid is null ? 0 : LastCapability());
        var psi = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            FileName = argv[0],
        };
        foreach (var a in argv.Skip(1))
            psi.ArgumentList.Add(a);
        if (File.Exists(spec.ControlSocket))
            File.Delete(spec.ControlSocket);

        var process = Process.Start(psi) ?? throw new VmsanException(ErrorCode.VmmFailed, "QEMU did not start.");
        var exited = WaitAsync(process);
        // Wait until QEMU has created its QMP socket (it listens from then on), or dies trying (bad arguments,
        // missing TAP...). Nothing is read from it here: ConnectAsync reads the greeting when control is needed.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!File.Exists(spec.ControlSocket))
        {
            if (exited.IsCompleted)
                throw new VmsanException(ErrorCode.VmmFailed, $"QEMU exited with code {await exited.ConfigureAwait(false)} before it was ready.",
                    $"See the supervisor log in the VM directory ({Path.GetDirectoryName(spec.ControlSocket)}).");
            if (DateTime.UtcNow > deadline)
            {
                process.Kill();
                throw new VmsanException(ErrorCode.VmmFailed, "QEMU did not open its QMP socket within 15 s.");
            }
            await Task.Delay(5, ct).ConfigureAwait(false);
        }
        return new VmmProcess(process.Id, exited);
    }

    private static async Task<int> WaitAsync(Process p)
    {
        using (p)
        {
            await p.WaitForExitAsync().ConfigureAwait(false);
            return p.ExitCode;
        }
    }

    public async Task<IVmmControl> ConnectAsync(string controlSocket, CancellationToken ct) =>
        new QemuControl(await QmpClient.ConnectAsync(controlSocket, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false));

    private sealed class QemuControl(QmpClient qmp) : IVmmControl
    {
        public Task PowerdownAsync(CancellationToken ct) => qmp.ExecuteAsync("system_powerdown", null, ct);

        public async Task QuitAsync(CancellationToken ct)
        {
            try
            {
                await qmp.ExecuteAsync("quit", null, ct).ConfigureAwait(false);
            }
            catch (VmsanException)
            {
                // QEMU may close the socket before it answers "quit": that is success.
            }
        }

        public Task PauseAsync(CancellationToken ct) => qmp.ExecuteAsync("stop", null, ct);

        public Task ResumeAsync(CancellationToken ct) => qmp.ExecuteAsync("cont", null, ct);

        public async Task<string> QueryStatusAsync(CancellationToken ct)
        {
            var r = await qmp.ExecuteAsync("query-status", null, ct).ConfigureAwait(false);
            return r?["status"]?.GetValue<string>() ?? "unknown";
        }

        public async Task SaveStateAsync(string uri, CancellationToken ct)
        {
            await SetIgnoreSharedAsync(ct).ConfigureAwait(false);
            await qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = uri }, ct).ConfigureAwait(false);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var r = await qmp.ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false);
                var status = r?["status"]?.GetValue<string>();
                if (status == "completed")
                    return;
                if (status is "failed" or "cancelled")
                    throw new VmsanException(ErrorCode.VmmFailed, $"Saving the device state failed: {r?["error-desc"]?.GetValue<string>() ?? status}");
                if (DateTime.UtcNow > deadline)
                    throw new VmsanException(ErrorCode.Timeout, "Saving the device state did not finish within 60 s.");
                await Task.Delay(2, ct).ConfigureAwait(false);
            }
        }

        public async Task LoadStateAsync(string uri, Func<CancellationToken, Task> feed, CancellationToken ct)
        {
            await SetIgnoreSharedAsync(ct).ConfigureAwait(false);
            await qmp.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = uri }, ct).ConfigureAwait(false);
            await feed(ct).ConfigureAwait(false);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                var status = await QueryStatusAsync(ct).ConfigureAwait(false);
                if (status is "paused" or "running")
                    return;
                if (status != "inmigrate")
                    throw new VmsanException(ErrorCode.VmmFailed, $"Loading the device state failed (VMM status {status}).",
                        "The snapshot may come from a different QEMU build or VM layout; see the supervisor log.");
                if (DateTime.UtcNow > deadline)
                    throw new VmsanException(ErrorCode.Timeout, "Loading the device state did not finish within 60 s.");
                await Task.Delay(2, ct).ConfigureAwait(false);
            }
        }

        public Task FreezeDiskAsync(string newTop, CancellationToken ct) =>
            qmp.ExecuteAsync("blockdev-snapshot-sync", new JsonObject
            {
                ["device"] = "root",
                ["snapshot-file"] = newTop,
                ["format"] = "qcow2",
                ["mode"] = "existing",
            }, ct);

        private Task SetIgnoreSharedAsync(CancellationToken ct) =>
            qmp.ExecuteAsync("migrate-set-capabilities", new JsonObject
            {
                ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "x-ignore-shared", ["state"] = true }),
            }, ct);

        public async Task<string> VersionAsync(CancellationToken ct)
        {
            var r = await qmp.ExecuteAsync("query-version", null, ct).ConfigureAwait(false);
            var q = r?["qemu"];
            var pkg = r?["package"]?.GetValue<string>()?.Trim();
            return $"{q?["major"]}.{q?["minor"]}.{q?["micro"]}" + (string.IsNullOrEmpty(pkg) ? "" : $" ({pkg})");
        }

        public ValueTask DisposeAsync() => qmp.DisposeAsync();
    }
}
