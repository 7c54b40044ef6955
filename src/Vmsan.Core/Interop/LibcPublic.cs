namespace Vmsan.Core.Interop;

/// <summary>The few native facts other assemblies need, without exposing the raw imports.</summary>
public static class LibcPublic
{
    public static bool IsRoot() => Libc.Geteuid() == 0;

    /// <summary>Sends a signal to an exact process (pid reuse checked).</summary>
    public static void Signal(State.ProcessRef? process, int signal) => State.ProcessProbe.Kill(process, signal);

    public const int SIGKILL = Libc.SIGKILL;
    public const int SIGTERM = Libc.SIGTERM;
}
