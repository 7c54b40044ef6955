using System.Runtime.InteropServices;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Terminal;

/// <summary>
/// Joins an <see cref="ExecStream"/> to the local stdio: output to stdout/stderr, stdin (optionally) to the exec,
/// the terminal in raw mode with its size following SIGWINCH for a TTY, and Ctrl-C (SIGINT) forwarded as SIGINT to the
/// remote process group (every time: <see cref="Interrupts"/> steps aside while a stream runs). Returns the remote exit status.
/// </summary>
internal static class StreamRunner
{
    /// <summary>Ctrl-] : leaves a connect session without ending it (like telnet).</summary>
    public const byte DetachKey = 0x1d;

    public static async Task<int> RunAsync(ExecStream exec, bool forwardStdin, bool tty, bool allowDetach, TextWriter err, CancellationToken interrupt)
    {
        // Ctrl-C arrives as a signal (below), not through the interrupt token: the stream lives until the exit frame.
        _ = interrupt;
        using var raw = tty ? RawTerminal.TryEnter() : null;
        using var winch = tty ? PosixSignalRegistration.Create(PosixSignal.SIGWINCH, signal =>
        {
            if (RawTerminal.Size() is { } size)
                _ = exec.ResizeAsync(size.Cols, size.Rows);
        }) : null;
        using var detach = new CancellationTokenSource();
        // Ctrl-C (SIGINT, and SIGTERM/SIGQUIT likewise) goes to the remote process group instead of killing vmsan: the
        // remote process decides what it means, and its exit status (130 when it dies of SIGINT) becomes ours.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Forward(exec, 2));
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, Forward(exec, 3));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward(exec, 15));
        // After the registrations: a signal between the two would otherwise find no one to handle it.
        using var forwarding = Interrupts.ForwardingToGuest();
        await using var stdout = Console.OpenStandardOutput();
        await using var stderr = Console.OpenStandardError();
        var output = exec.CopyOutputAsync(stdout, tty ? stdout : stderr, detach.Token);
        if (forwardStdin)
            _ = Task.Run(() => PumpStdinAsync(exec, allowDetach && raw is not null, detach));
        try
        {
            var result = await output.ConfigureAwait(false);
            return result.ExitCode;
        }
        catch (OperationCanceledException) when (detach.IsCancellationRequested)
        {
            raw?.Dispose();
            await err.WriteLineAsync($"detached from {exec.Id} (it keeps running; reattach with the same command)").ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is VmsanException or Vmsan.Errors.VmsanException && detach.IsCancellationRequested)
        {
            raw?.Dispose();
            await err.WriteLineAsync($"detached from {exec.Id}").ConfigureAwait(false);
            return 0;
        }
    }

    private static Action<PosixSignalContext> Forward(ExecStream exec, int signal) => context =>
    {
        context.Cancel = true;
        _ = exec.SignalAsync(signal);
    };

    private static async Task PumpStdinAsync(ExecStream exec, bool allowDetach, CancellationTokenSource detach)
    {
        // A plain read(2) on fd 0, not Console.OpenStandardInput(): .NET's console stream re-applies
        // its own (canonical, echoing) terminal settings around each read, which undid our raw mode:
        // keys arrived a line at a time and Ctrl-] never reached us.
        await using var stdin = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await stdin.ReadAsync(buffer).ConfigureAwait(false);
                if (n == 0)
                {
                    await exec.CloseStdinAsync().ConfigureAwait(false);
                    return;
                }

                var chunk = buffer.AsMemory(0, n);
                if (allowDetach && chunk.Span.IndexOf(DetachKey) is var at and >= 0)
                {
                    if (at > 0)
                        await exec.WriteStdinAsync(chunk[..at]).ConfigureAwait(false);
                    await detach.CancelAsync().ConfigureAwait(false);
                    return;
                }

                await exec.WriteStdinAsync(chunk).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }
}
