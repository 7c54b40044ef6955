using System.Diagnostics;

namespace Vmsan.UnitTests.Support;

/// <summary>Runs the real cpio(1), so archives are checked by an independent reader.</summary>
public static class Cpio
{
    /// <summary><c>cpio -idm</c> of <paramref name="archive"/> into <paramref name="dir"/>; returns cpio's exit code and stderr.</summary>
    public static async Task<(int ExitCode, string Stderr)> ExtractAsync(byte[] archive, string dir)
    {
        var ct = TestContext.Current.CancellationToken;
        var psi = new ProcessStartInfo("cpio")
        {
            WorkingDirectory = dir,
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["-idm", "--quiet", "--no-absolute-filenames"])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync(ct);
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        await p.StandardInput.BaseStream.WriteAsync(archive, ct);
        p.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await p.WaitForExitAsync(timeout.Token);
        await stdout;
        return (p.ExitCode, await stderr);
    }
}
