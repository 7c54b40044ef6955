using System.Globalization;
using Vmsan.Vmm;

namespace Vmsan.Boot;

internal static class KernelCommandLine
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
        if (accel.Kind != AccelKind.Tcg)
            return Base;
        // tsc=reliable: with 2+ vCPUs the kernel sees TCG's TSCs as unsynchronized and falls back to jiffies (4 ms
        // resolution, a clock that falls behind under load); TCG derives every vCPU's TSC from the host's cycle counter,
        // so they are in step. Measured: clocksource tsc, 1 ns resolution, no backwards steps across vCPUs, < 3 ms drift
        // in 120 s of load on 2 and 4 vCPUs. It also turns the clocksource watchdog off: the agent steps the wall clock
        // to the host's (see GuestClock in the agent).
        var line = Base + " tsc=reliable";
        // Under TCG the PIT-based TSC calibration hangs about one boot in ten; give the value.
        if (accel.TscKhz is { } khz)
            line += " tsc_early_khz=" + khz.ToString(CultureInfo.InvariantCulture);
        return line;
    }
}
