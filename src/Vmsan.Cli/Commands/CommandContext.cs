using Vmsan.Cli.Output;
using Vmsan.Cli.Terminal;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Commands;

public sealed class CommandContext(CliConsole console)
{
    private VmsanClient? _client;

    public CliConsole Console { get; } = console;

    /// <summary>The CLI's SIGINT/SIGTERM handling; null when the commands run inside a test, not as the process.</summary>
    internal Interrupts? Interrupts { get; init; }

    public VmsanClient Client => _client ??= new VmsanClient(new VmsanClientOptions { Log = Console.Debug, Warn = m => Console.Err.WriteLine($"vmsan: warning: {m}") });

    /// <summary>Runs an action, mapping vmsan's typed errors (and any surprise) to output and exit code in one place.</summary>
    public async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (VmsanException ex)
        {
            return Console.Fail(ex);
        }
        catch (Vmsan.Errors.VmsanException ex)
        {
            // The SDK's public calls fail with its own exception: the same code, message and hint.
            return Console.Fail(CliErrors.FromSdk(ex));
        }
        catch (OperationCanceledException) when (Interrupts is { Signal: > 0 and var signal })
        {
            return Console.Interrupted(signal);
        }
        catch (OperationCanceledException)
        {
            // Not a signal: a deadline inside the command passed.
            return Console.Fail(new VmsanException(ErrorCode.Timeout, "The operation was cancelled: a deadline passed.", "Re-run with --verbose to see which step."));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            Console.Debug(ex.ToString());
            return Console.Fail(new VmsanException(ErrorCode.Internal, ex.Message, "Re-run with --verbose and report the output."));
        }
    }
}
