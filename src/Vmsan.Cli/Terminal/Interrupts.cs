using System.Runtime.InteropServices;

namespace Vmsan.Cli.Terminal;

/// <summary>
/// SIGINT (Ctrl-C) and SIGTERM of the CLI. The first one cancels the running command's token and is otherwise
/// swallowed, so the command stops the way it was written to and its cleanup runs to the end: a runtime build
/// signals its process group and waits for the build script's trap to remove its temp tree, a pull keeps its
/// resumable <c>.partial</c>. <see cref="Commands.CommandContext"/> turns that cancellation into <c>INTERRUPTED</c>
/// with exit status 128 + the signal. A second signal is left to its default action, which ends vmsan at once (a
/// user pressing Ctrl-C again does not want to wait for a cleanup; what it leaves, the next command reconciles).
/// While an exec stream forwards signals to the guest (<see cref="StreamRunner"/>), every signal is the guest's and
/// this class leaves it alone.
/// </summary>
/// <remarks>
/// Replaces System.CommandLine's own handling (ProcessTerminationTimeout, 2 s by default, set to null in CliApp): by
/// its contract it returns from the invocation once that time has passed after the signal, cleanup done or not, and
/// its handler waits out that time inside the signal callback; it has no notion of a second signal.
/// </remarks>
internal sealed class Interrupts : IDisposable
{
    private static int s_forwarding;
    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;
    private int _signal;

    public Interrupts()
    {
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    /// <summary>Cancelled by the first SIGINT or SIGTERM.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The number of the signal that interrupted the command (2 or 15), 0 while none has.</summary>
    public int Signal => Volatile.Read(ref _signal);

    /// <summary>While the returned scope lives, signals belong to an exec stream that forwards them to the guest.</summary>
    public static IDisposable ForwardingToGuest()
    {
        Interlocked.Increment(ref s_forwarding);
        return new Scope();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _cts.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (Volatile.Read(ref s_forwarding) > 0)
            return;
        var number = context.Signal == PosixSignal.SIGINT ? 2 : 15;
        if (Interlocked.CompareExchange(ref _signal, number, 0) != 0)
        {
            // The second one: not cancelled, so its default action ends the process, and no finally runs: a live
            // progress display (Spectre's status or bars) would leave the terminal's cursor hidden.
            if (!Console.IsErrorRedirected)
                Console.Error.Write("\u001b[?25h");
            return;
        }
        context.Cancel = true;
        // Not Cancel(): its callbacks would run here, on the one thread that delivers signals, and a slow one
        // would hold back the second Ctrl-C.
        _ = _cts.CancelAsync();
    }

    private sealed class Scope : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
                Interlocked.Decrement(ref s_forwarding);
        }
    }
}
