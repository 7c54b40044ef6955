using System.Diagnostics;
using Vmsan.UnitTests.Support;
using Vmsan.Vmm.Qemu;

namespace Vmsan.UnitTests.Vmm;

/// <summary>
/// A real <c>qemu-system-x86_64 -M none</c>: no guest, no CPU, just QEMU's own QMP server, which
/// starts in ~50 ms. Killed (by its pid) and its directory removed on dispose.
/// </summary>
public sealed class QemuNone : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Process _process;

    public QemuNone()
    {
        var qemu = QemuMicrovmBackend.FindOnPath(QemuMicrovmBackend.DefaultBinary)
            ?? throw new InvalidOperationException("qemu-system-x86_64 is not installed (./install.sh installs it).");
        SocketPath = _dir.Combine("qmp.sock");
        var psi = new ProcessStartInfo(qemu) { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var a in (string[])["-M", "none", "-qmp", $"unix:{SocketPath},server=on,wait=off", "-nographic", "-nodefaults"])
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
    }

    public string SocketPath { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>SIGSTOP / SIGCONT: QEMU then holds every reply, like a VMM stuck on I/O.</summary>
    public void Freeze(bool frozen) => Sh("kill", frozen ? "-STOP" : "-CONT", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Kill()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit();
    }

    private static void Sh(string file, params string[] args)
    {
        using var p = Process.Start(file, args);
        p.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Freeze(false);
                _process.Kill();
                _process.WaitForExit();
            }
        }
        finally
        {
            _process.Dispose();
            _dir.Dispose();
        }
    }
}
