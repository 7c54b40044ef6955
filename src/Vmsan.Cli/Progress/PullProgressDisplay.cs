using System.Collections.Concurrent;
using System.Globalization;
using Spectre.Console;
using Vmsan.Cli.Output;
using Vmsan.Images;

namespace Vmsan.Cli.Progress;

/// <summary>
/// Pull and conversion progress on stderr: one live bar per layer (Spectre.Console) when stderr
/// is a terminal, plain lines (a phase per line, a line per finished layer) otherwise, nothing
/// with --json. Results stay on stdout either way.
/// </summary>
public static class PullProgressDisplay
{
    public static async Task<T> RunAsync<T>(CliConsole console, Func<IImagePullProgress?, Task<T>> work)
    {
        if (console.Json)
            return await work(null).ConfigureAwait(false);
        if (System.Console.IsErrorRedirected)
            return await work(new PlainProgress(console.Err)).ConfigureAwait(false);
        var ansi = StderrConsole.Create();
        T result = default!;
        await ansi.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async ctx => result = await work(new LiveProgress(ctx)).ConfigureAwait(false)).ConfigureAwait(false);
        return result;
    }

    private static string Short(string digest) => digest.Length > 19 ? digest[..19] : digest;

    private sealed class LiveProgress(ProgressContext ctx) : IImagePullProgress
    {
        private readonly ConcurrentDictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);
        private ProgressTask? _phase;

        public void Blob(string digest, long done, long total)
        {
            var t = _tasks.GetOrAdd(digest, d => ctx.AddTask(Markup.Escape(Short(d)), autoStart: true, maxValue: Math.Max(1, total)));
            if (total > 0 && Math.Abs(t.MaxValue - total) > 0.5)
                t.MaxValue = total;
            t.Value = done;
            if (total > 0 && done >= total)
                t.StopTask();
        }

        public void Phase(string message)
        {
            _phase?.StopTask();
            _phase = ctx.AddTask(Markup.Escape(message), autoStart: true, maxValue: 1);
            _phase.IsIndeterminate = true;
            _phase.Value = 1;
        }
    }

    private sealed class PlainProgress(TextWriter err) : IImagePullProgress
    {
        private readonly ConcurrentDictionary<string, bool> _done = new(StringComparer.Ordinal);
        private readonly Lock _gate = new();

        public void Blob(string digest, long done, long total)
        {
            if (total <= 0 || done < total || !_done.TryAdd(digest, true))
                return;
            lock (_gate)
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Short(digest)}  {total / 1048576.0:F1} MiB done"));
        }

        public void Phase(string message)
        {
            lock (_gate)
                err.WriteLine(message);
        }
    }
}
