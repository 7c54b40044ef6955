using System.Diagnostics;
using System.Globalization;
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

    public QemuMicrovmBackend(string? binary = null) => _binary = binary ?? DefaultBinary;

    public string Name => "qemu-microvm";

    /// <summary>Translation cache size under TCG. Bigger caches stop QEMU re-translating the agent's start-up code.</summary>
    public static int TcgTbSizeMib => int.TryParse(Environment.GetEnvironmentVariable("VMSAN_TCG_TB_SIZE"), out var v) && v > 0 ? v : 64;

    /// <summary>CPU model under TCG (VMSAN_TCG_CPU overrides).</summary>
    public static string TcgCpu => Environment.GetEnvironmentVariable("VMSAN_TCG_CPU") is { Length: > 0 } c ? c : "max";

    public string? CheckAvailable() =>
        FindOnPath(_binary) is null ? $"{_binary} not found on PATH" : null;

    public static string? FindOnPath(string binary)
    {
        if (binary.Contains('/', StringComparison.Ordinal))
            return File.Exists(binary) ? binary : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            var p = Path.Combine(dir, binary);
            if (File.Exists(p))
                return p;
        }
        return null;
    }

    /// <summary>The full argument vector (without the binary). Pure: unit-tested.</summary>
    public static List<string> BuildArgs(VmLaunchSpec spec)
    {
        var inv = CultureInfo.InvariantCulture;
        var args = new List<string>
        {
            "-name", spec.VmId,
            // ACPI stays on: the cloud kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES and finds the
            // virtio-mmio devices through ACPI tables.
            "-M", "microvm,x-option-roms=off,rtc=on",
        };
        if (spec.Accel.Kind == AccelKind.Kvm)
        {
            args.AddRange(["-accel", "kvm", "-cpu", "host"]);
        }
        else
        {
            args.AddRange(["-accel", $"tcg,thread=multi,tb-size={TcgTbSizeMib.ToString(inv)}", "-cpu", TcgCpu]);
        }
        args.AddRange([
            "-m", spec.MemoryMib.ToString(inv),
            "-smp", spec.Vcpus.ToString(inv),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", spec.Kernel,
            "-initrd", spec.Initrd,
            "-append", spec.KernelArgs,
            "-chardev", $"file,id=con0,path={EscapeOpt(spec.ConsoleLog)}",
            "-serial", "chardev:con0",
            "-drive", $"id=root,file={EscapeOpt(spec.Disk)},format={spec.DiskFormat},if=none,discard=unmap,detect-zeroes=unmap",
            "-device", "virtio-blk-device,drive=root",
        ]);
        if (spec.Tap is not null)
        {
            args.AddRange([
                "-netdev", $"tap,id=net0,ifname={spec.Tap},script=no,downscript=no",
                "-device", $"virtio-net-device,netdev=net0,mac={spec.Mac}",
            ]);
        }
        args.AddRange(["-qmp", $"unix:{EscapeOpt(spec.ControlSocket)},server=on,wait=off"]);
        return args;
    }

    /// <summary>QEMU option values use ',' as separator; a literal comma is written twice.</summary>
    private static string EscapeOpt(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    public async Task<VmmProcess> LaunchAsync(VmLaunchSpec spec, CancellationToken ct)
    {
        var qemu = FindOnPath(_binary) ?? throw new VmsanException(ErrorCode.QemuNotFound, $"{_binary} is not installed.",
            "Run ./install.sh, or `apt-get install qemu-system-x86`.");
        var psi = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
        };
        if (spec.Netns is not null)
        {
            // `ip netns exec` setns()es and then execs QEMU, so the pid we get is QEMU's own.
            psi.FileName = "ip";
            foreach (var a in (string[])["netns", "exec", spec.Netns, qemu])
                psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = qemu;
        }
        foreach (var a in BuildArgs(spec))
            psi.ArgumentList.Add(a);
        if (File.Exists(spec.ControlSocket))
            File.Delete(spec.ControlSocket);

        var process = Process.Start(psi) ?? throw new VmsanException(ErrorCode.VmmFailed, "QEMU did not start.");
        var exited = WaitAsync(process);
        // Wait until QMP answers, or QEMU dies trying (bad arguments, missing TAP...).
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

        public ValueTask DisposeAsync() => qmp.DisposeAsync();
    }
}
