using System.Globalization;
using Vmsan.Vmm;

namespace Vmsan.Boot;

public static class KernelCommandLine
{
    /// <summary>
    /// Measured fast arguments (docs/internals.md, "Guest boot chain"): no probing of absent hardware, one UART, no PCI scan,
    /// no self-tests. panic=1 with QEMU's -no-reboot turns a guest panic into a VMM exit.
    /// </summary>
    public const string Base =
        "console=ttyS0 quiet i8042.noaux i8042.nokbd i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1 pci=off " +
        "mitigations=off nokaslr audit=0 cryptomgr.notests random.trust_cpu=on panic=1 rdinit=/init";

    public static string For(AccelChoice accel)
    {
        // Under TCG the PIT-based TSC calibration hangs about one boot in ten; give the value.
        if (accel.Kind == AccelKind.Tcg && accel.TscKhz is { } khz)
            return Base + " tsc_early_khz=" + khz.ToString(CultureInfo.InvariantCulture);
        return Base;
    }
}
