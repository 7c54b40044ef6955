using System.Diagnostics;
using System.Globalization;

namespace Vmsan.Vmm.Qemu;

/// <summary>
/// What <c>qemu-system-x86_64 --version</c> prints, remembered per binary. Running it costs 70–110 ms on
/// the loaded 2-core machine (QEMU loads ~100 shared libraries first), and it was run once by every
/// confined boot (to pick the chroot/runas syntax) and twice by every snapshot restore (the build check and
/// the launch): a large share of a ~200 ms restore. The cache file holds the binary's path, size and
/// modification time next to the output; a package upgrade changes the latter two, so a stale entry is
/// never used (it is re-read and rewritten instead).
/// </summary>
public static class QemuVersionCache
{
    public const string FileName = "qemu-version";

    /// <summary>The <c>--version</c> output of <paramref name="binary"/> (a full path), or null when it cannot be run.</summary>
    /// <param name="binary">The QEMU binary.</param>
    /// <param name="cacheDir">A directory only root writes (under VMSAN_HOME); null: no cache.</param>
    public static string? Output(string binary, string? cacheDir)
    {
        var key = KeyOf(binary);
        if (key is null)
            return null;
        var file = cacheDir is null ? null : Path.Combine(cacheDir, FileName);
        if (file is not null && TryRead(file) is { } cached && cached.StartsWith(key + "\n", StringComparison.Ordinal))
            return cached[(key.Length + 1)..];
        var output = Run(binary);
        if (output is not null && file is not null)
            TryWrite(file, key + "\n" + output);
        return output;
    }

    /// <summary>"path size mtime-ticks" of the binary, or null when it does not exist.</summary>
    internal static string? KeyOf(string binary)
    {
        var info = new FileInfo(binary);
        if (!info.Exists)
            return null;
        return string.Create(CultureInfo.InvariantCulture, $"{info.FullName} {info.Length} {info.LastWriteTimeUtc.Ticks}");
    }

    private static string? Run(string binary)
    {
        try
        {
            var psi = new ProcessStartInfo(binary, "--version") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi);
            if (p is null)
                return null;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string? TryRead(string file)
    {
        try
        {
            return File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Written to a temp file and renamed, so a concurrent reader sees the old entry or the new one, never half.</summary>
    private static void TryWrite(string file, string content)
    {
        var tmp = $"{file}.{Environment.ProcessId}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(tmp, content);
            File.Move(tmp, file, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(tmp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
