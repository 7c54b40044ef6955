using Spectre.Console;
using Vmsan.Cli.Output;

namespace Vmsan.Cli.Progress;

/// <summary>
/// Byte progress of one transfer (upload, download; reusable for any byte stream) on stderr: a live Spectre.Console
/// bar with bytes, rate and time left when stderr is a terminal, and nothing at all with --json or when stderr is
/// not a terminal (scripts and logs get no control characters). Results stay on stdout either way.
/// </summary>
public static class TransferProgressDisplay
{
    /// <summary>Known-size transfers smaller than this finish before a bar is worth drawing.</summary>
    public const long MinBytes = 1024 * 1024;

    /// <param name="console">Where --json is known.</param>
    /// <param name="label">What moves (shown left of the bar).</param>
    /// <param name="total">Expected bytes, or null when unknown (then bytes and rate only, no time left).</param>
    /// <param name="work">The transfer; reports cumulative bytes to the progress it gets (null: no display).</param>
    public static async Task<T> RunAsync<T>(CliConsole console, string label, long? total, Func<IProgress<long>?, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(work);
        if (!Shows(console.Json, System.Console.IsErrorRedirected, total))
            return await work(null).ConfigureAwait(false);
        var ansi = StderrConsole.Create();
        T result = default!;
        await ansi.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), autoStart: true, maxValue: Math.Max(1, total ?? 1));
                task.IsIndeterminate = total is null;
                result = await work(new TaskProgress(task, total is null)).ConfigureAwait(false);
                task.Value = task.MaxValue;
                task.StopTask();
            }).ConfigureAwait(false);
        return result;
    }

    /// <summary>Whether a bar is drawn: a terminal on stderr, no --json, and not a known-small transfer.</summary>
    public static bool Shows(bool json, bool stderrRedirected, long? total) =>
        !json && !stderrRedirected && total is not (< MinBytes);

    /// <summary>Bytes of the regular files under <paramref name="sources"/> (symlinks not followed), or null when unreadable.</summary>
    public static long? LocalBytes(IEnumerable<string> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        try
        {
            long sum = 0;
            var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
            foreach (var s in sources)
            {
                var info = new FileInfo(s);
                if (info.LinkTarget is not null)
                    continue;
                if (info.Exists)
                    sum += info.Length;
                else if (Directory.Exists(s))
                    sum += new DirectoryInfo(s).EnumerateFiles("*", options).Sum(f => f.Length);
            }
            return sum;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private sealed class TaskProgress(ProgressTask task, bool unknownTotal) : IProgress<long>
    {
        public void Report(long value)
        {
            // A tar stream carries headers and padding beyond the content's size: the bar stops at full, not past it.
            if (unknownTotal && value > task.MaxValue)
                task.MaxValue = value;
            task.Value = Math.Min(value, task.MaxValue);
        }
    }
}
