using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vmsan.Core.Errors;

namespace Vmsan.Cli.Output;

/// <summary>
/// Everything the CLI prints goes through here: results to stdout (a table or one JSON document),
/// logs and errors to stderr. Tests swap the writers to assert output exactly.
/// </summary>
public sealed class CliConsole
{
    public CliConsole(TextWriter stdout, TextWriter stderr)
    {
        Out = stdout;
        Err = stderr;
    }

    public TextWriter Out { get; }

    public TextWriter Err { get; }

    public bool Json { get; set; }

    public bool Verbose { get; set; }

    public void Debug(string message)
    {
        if (Verbose)
            Err.WriteLine($"vmsan: {message}");
    }

    public void Info(string message)
    {
        if (!Json)
            Err.WriteLine(message);
    }

    public void WriteJson<T>(T value, JsonTypeInfo<T> info) => Out.WriteLine(JsonSerializer.Serialize(value, info));

    /// <summary>The one place errors become output and exit codes.</summary>
    public int Fail(VmsanException ex)
    {
        if (Json)
            WriteJson(new ErrorEnvelope(new ErrorBody(ex.Code.ToWire(), ex.Message, ex.Fix)), CliJsonContext.Default.ErrorEnvelope);
        else
        {
            Err.WriteLine($"error [{ex.Code.ToWire()}]: {ex.Message}");
            if (ex.Fix is not null)
                Err.WriteLine($"  fix: {ex.Fix}");
        }
        return ExitCodes.Error;
    }

    /// <summary>
    /// A command stopped by the first SIGINT/SIGTERM (its cleanup done): one line (no fix: running it again is the fix),
    /// and the status a shell gives a process killed by that signal.
    /// </summary>
    public int Interrupted(int signal)
    {
        var name = signal == 2 ? "SIGINT" : signal == 15 ? "SIGTERM" : $"signal {signal}";
        var ex = new VmsanException(ErrorCode.Interrupted, $"Interrupted by {name}.", null);
        if (Json)
            WriteJson(new ErrorEnvelope(new ErrorBody(ex.Code.ToWire(), ex.Message, ex.Fix)), CliJsonContext.Default.ErrorEnvelope);
        else
            Err.WriteLine($"error [{ex.Code.ToWire()}]: {ex.Message}");
        return ExitCodes.Signalled(signal);
    }
}

public static class ExitCodes
{
    public const int Ok = 0;
    public const int Error = 1;

    /// <summary>128 + the signal, as shells report a process a signal ended: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.</summary>
    public static int Signalled(int signal) => 128 + signal;
}
