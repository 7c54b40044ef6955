using CsCheck;
using Vmsan.Agent.Client;
using Vmsan.Cli.Progress;

namespace Vmsan.UnitTests.Cli;

public class TransferProgressTests
{
    private sealed class Recorder : IProgress<long>
    {
        public List<long> Values { get; } = [];

        public void Report(long value) => Values.Add(value);
    }

    [Fact]
    public void Progress_counts_every_byte_written_or_read_in_order_and_leaves_the_inner_stream_open()
    {
        Gen.Int[0, 5000].Array[0, 8].Sample(chunks =>
        {
            var inner = new MemoryStream();
            var written = new Recorder();
            using (var counting = new ProgressStream(inner, written))
                foreach (var n in chunks)
                    counting.Write(new byte[n], 0, n);

            var sums = chunks.Where(n => n > 0).Select((_, i) => (long)chunks.Where(n => n > 0).Take(i + 1).Sum()).ToList();
            Assert.Equal(sums, written.Values);
            Assert.Equal(chunks.Sum(), inner.Length);

            inner.Position = 0;
            var read = new Recorder();
            var reader = new ProgressStream(inner, read);
            var buffer = new byte[777];
            while (reader.Read(buffer, 0, buffer.Length) > 0)
            {
            }
            Assert.Equal(chunks.Sum(), read.Values.LastOrDefault());
            Assert.Equal(read.Values.Order().ToList(), read.Values);
        });
    }

    [Theory]
    [InlineData(false, false, null, true)]
    [InlineData(false, false, 10L * 1024 * 1024, true)]
    [InlineData(false, false, 1000L, false)]
    [InlineData(true, false, 10L * 1024 * 1024, false)]
    [InlineData(false, true, 10L * 1024 * 1024, false)]
    [InlineData(false, true, null, false)]
    public void A_bar_is_drawn_only_on_a_terminal_without_json_and_not_for_a_known_small_transfer(bool json, bool redirected, long? total, bool shows)
    {
        Assert.Equal(shows, TransferProgressDisplay.Shows(json, redirected, total));
    }

    [Fact]
    public void The_local_size_counts_regular_files_recursively_and_not_what_symlinks_point_to()
    {
        var root = Directory.CreateTempSubdirectory("vmsan-progress-");
        try
        {
            var dir = Directory.CreateDirectory(Path.Combine(root.FullName, "d", "e"));
            File.WriteAllBytes(Path.Combine(root.FullName, "d", "a"), new byte[1000]);
            File.WriteAllBytes(Path.Combine(dir.FullName, "b"), new byte[234]);
            var single = Path.Combine(root.FullName, "single");
            File.WriteAllBytes(single, new byte[5]);
            File.CreateSymbolicLink(Path.Combine(root.FullName, "d", "link"), single);
            Directory.CreateSymbolicLink(Path.Combine(root.FullName, "d", "dirlink"), root.FullName);

            Assert.Equal(1239, TransferProgressDisplay.LocalBytes([Path.Combine(root.FullName, "d"), single]));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_stderr_console_is_interactive_whatever_stdin_and_stdout_are()
    {
        // Callers create it once they have seen stderr is a terminal; stdin and stdout must not turn the live bars off
        // (`digest=$(vmsan images pull REF)`). Under the test runner stdout is a pipe, which Spectre's own detection
        // took for "not interactive"; ImageRegistryTests draws the bars on a real pseudo-terminal.
        var console = StderrConsole.Create(new StringWriter());
        Assert.True(console.Profile.Capabilities.Interactive);
    }
}
