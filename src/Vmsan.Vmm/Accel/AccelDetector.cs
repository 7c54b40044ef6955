using Vmsan.Core.Errors;

namespace Vmsan.Vmm;

/// <summary>
/// Picks KVM when it can run a stock kernel, else TCG. PVM (a paravirtual "KVM" module that only
/// runs PVM-aware guests) exposes /dev/kvm too, so the device alone proves nothing: we also need
/// hardware virtualization flags (vmx/svm) and no kvm_pvm module.
/// </summary>
public sealed class AccelDetector
{
    private readonly Func<string, bool> _exists;
    private readonly Func<string, string?> _read;
    private readonly Func<string, bool> _canOpenRw;

    public AccelDetector()
        : this(p => File.Exists(p) || Directory.Exists(p), TryRead, CanOpenRw)
    {
    }

    public AccelDetector(Func<string, bool> exists, Func<string, string?> read, Func<string, bool> canOpenRw)
    {
        _exists = exists;
        _read = read;
        _canOpenRw = canOpenRw;
    }

    public AccelChoice Detect(string? requested = null)
    {
        var kvmProblem = KvmProblem();
        switch (requested?.ToLowerInvariant())
        {
            case null or "" or "auto":
                return kvmProblem is null
                    ? new AccelChoice(AccelKind.Kvm, "/dev/kvm usable with hardware virtualization")
                    : new AccelChoice(AccelKind.Tcg, $"KVM unusable: {kvmProblem}; using TCG emulation", TscKhz());
            case "kvm":
                if (kvmProblem is not null)
                    throw new VmsanException(ErrorCode.KvmUnavailable, $"--accel kvm requested but KVM is unusable: {kvmProblem}.",
                        "Use --accel tcg (or auto), or run on a host with hardware virtualization and /dev/kvm.");
                return new AccelChoice(AccelKind.Kvm, "requested");
            case "tcg":
                return new AccelChoice(AccelKind.Tcg, "requested", TscKhz());
            default:
                throw VmsanException.Invalid($"Unknown accelerator '{requested}'.", "Use --accel auto, kvm or tcg.");
        }
    }

    /// <summary>Null when KVM is usable, else why not.</summary>
    public string? KvmProblem()
    {
        if (!_exists("/dev/kvm"))
            return "/dev/kvm does not exist";
        if (_exists("/sys/module/kvm_pvm"))
            return "/dev/kvm is PVM (kvm_pvm), which cannot run stock kernels";
        var cpuinfo = _read("/proc/cpuinfo") ?? "";
        var flags = cpuinfo.Split('\n').FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        var words = flags.Split(' ', '\t');
        if (!words.Contains("vmx") && !words.Contains("svm"))
            return "the CPU exposes no vmx/svm virtualization flags";
        if (!_canOpenRw("/dev/kvm"))
            return "/dev/kvm cannot be opened read-write (add the user to the kvm group)";
        return null;
    }

    /// <summary>
    /// The host TSC frequency in kHz. Under TCG the guest kernel calibrates the TSC against the PIT
    /// and about one boot in ten hangs there; passing tsc_early_khz skips the calibration.
    /// </summary>
    public long? TscKhz()
    {
        var cpuinfo = _read("/proc/cpuinfo");
        if (cpuinfo is null)
            return null;
        foreach (var line in cpuinfo.Split('\n'))
        {
            if (!line.StartsWith("cpu MHz", StringComparison.Ordinal))
                continue;
            var value = line[(line.IndexOf(':') + 1)..].Trim();
            if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var mhz) && mhz > 0)
                return (long)Math.Round(mhz * 1000);
        }
        return null;
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool CanOpenRw(string path)
    {
        try
        {
            using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
