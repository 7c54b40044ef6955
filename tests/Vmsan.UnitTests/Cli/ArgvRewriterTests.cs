using Vmsan.Cli;

namespace Vmsan.UnitTests.Cli;

public class ArgvRewriterTests
{
    private static string[] Rewrite(string line) => ArgvRewriter.Rewrite(line.Split(' '));

    private static string Joined(string line) => string.Join(' ', Rewrite(line));

    [Fact]
    public void Exec_inserts_a_double_dash_after_the_id_so_command_options_stay_with_the_command()
    {
        Assert.Equal("exec vm-1a2b3c4d -- ls -la", Joined("exec vm-1a2b3c4d ls -la"));
    }

    [Theory]
    [InlineData("exec -e K=V vm-1a2b3c4d ls -la", "exec -e K=V vm-1a2b3c4d -- ls -la")]
    [InlineData("exec --env K=V vm-1a2b3c4d ls", "exec --env K=V vm-1a2b3c4d -- ls")]
    [InlineData("exec -w /tmp vm-1a2b3c4d pwd", "exec -w /tmp vm-1a2b3c4d -- pwd")]
    [InlineData("exec --workdir /tmp vm-1a2b3c4d pwd", "exec --workdir /tmp vm-1a2b3c4d -- pwd")]
    [InlineData("exec --cwd /tmp vm-1a2b3c4d pwd", "exec --cwd /tmp vm-1a2b3c4d -- pwd")]
    [InlineData("exec --user root vm-1a2b3c4d id -u", "exec --user root vm-1a2b3c4d -- id -u")]
    [InlineData("exec -u root vm-1a2b3c4d id -u", "exec -u root vm-1a2b3c4d -- id -u")]
    [InlineData("exec --timeout 2s vm-1a2b3c4d sleep 5", "exec --timeout 2s vm-1a2b3c4d -- sleep 5")]
    [InlineData("exec -e A=1 -w /tmp --user root --timeout 2s vm-1a2b3c4d ls -la /", "exec -e A=1 -w /tmp --user root --timeout 2s vm-1a2b3c4d -- ls -la /")]
    public void Exec_skips_option_values_before_the_id(string input, string expected)
    {
        Assert.Equal(expected, Joined(input));
    }

    [Fact]
    public void Exec_leaves_flags_without_values_in_place_before_the_id()
    {
        Assert.Equal("exec --json vm-1a2b3c4d -- ls -la", Joined("exec --json vm-1a2b3c4d ls -la"));
    }

    [Fact]
    public void Everything_after_the_exec_id_belongs_to_the_command_even_json()
    {
        // By design: `vmsan exec ID cmd --json` runs `cmd --json`; put --json before the id.
        Assert.Equal("exec vm-1a2b3c4d -- true --json", Joined("exec vm-1a2b3c4d true --json"));
    }

    [Theory]
    [InlineData("exec vm-1a2b3c4d -- ls -la")]
    [InlineData("exec -- vm-1a2b3c4d ls -la")]
    [InlineData("exec -e K=V vm-1a2b3c4d -- sh -c true")]
    [InlineData("run --rm -- uname -a")]
    public void An_existing_double_dash_is_left_alone(string input)
    {
        var args = input.Split(' ');

        var result = ArgvRewriter.Rewrite(args);

        Assert.Equal(args, result);
    }

    [Fact]
    public void Run_inserts_a_double_dash_before_the_command_after_all_options()
    {
        Assert.Equal("run --rm --memory 256 -- uname -a", Joined("run --rm --memory 256 uname -a"));
    }

    [Theory]
    [InlineData("run --vcpus 2 --disk 4G --runtime base --accel tcg ls -la", "run --vcpus 2 --disk 4G --runtime base --accel tcg -- ls -la")]
    [InlineData("run --kernel /k --rootfs /r -e A=1 -w / --timeout 5s true", "run --kernel /k --rootfs /r -e A=1 -w / --timeout 5s -- true")]
    [InlineData("run uname -a", "run -- uname -a")]
    [InlineData("run --timeout 10m --on-timeout pause --exec-timeout 5s true", "run --timeout 10m --on-timeout pause --exec-timeout 5s -- true")]
    public void Run_skips_every_value_option(string input, string expected)
    {
        Assert.Equal(expected, Joined(input));
    }

    [Theory]
    [InlineData("--json exec vm-1a2b3c4d ls -la", "--json exec vm-1a2b3c4d -- ls -la")]
    [InlineData("--verbose run --rm ls -l", "--verbose run --rm -- ls -l")]
    [InlineData("-v --json exec vm-1a2b3c4d ls -la", "-v --json exec vm-1a2b3c4d -- ls -la")]
    public void Global_flags_before_the_verb_are_skipped(string input, string expected)
    {
        Assert.Equal(expected, Joined(input));
    }

    [Theory]
    [InlineData("create --vcpus 2 --memory 256")]
    [InlineData("list --json")]
    [InlineData("stop vm-1a2b3c4d vm-2b3c4d5e")]
    [InlineData("rm -f vm-1a2b3c4d")]
    [InlineData("logs -f vm-1a2b3c4d")]
    [InlineData("--json doctor")]
    [InlineData("--help")]
    public void Other_verbs_are_untouched(string input)
    {
        var args = input.Split(' ');

        var result = ArgvRewriter.Rewrite(args);

        Assert.Equal(args, result);
    }

    [Theory]
    [InlineData("exec")]
    [InlineData("exec vm-1a2b3c4d")]
    [InlineData("exec -e K=V")]
    [InlineData("run --rm")]
    public void Incomplete_command_lines_are_left_for_the_parser_to_report(string input)
    {
        var args = input.Split(' ');

        var result = ArgvRewriter.Rewrite(args);

        Assert.Equal(args, result);
    }

    [Fact]
    public void Empty_argv_is_returned_as_is()
    {
        Assert.Empty(ArgvRewriter.Rewrite([]));
    }
}

/// <summary>Every value-taking flag of `run` must be known to the rewriter, or its value would be taken for the command.</summary>
public class ArgvRewriterCompletenessTests
{
    [Fact]
    public void Every_value_taking_run_option_keeps_its_value_out_of_the_command()
    {
        var root = CliApp.Build(new Vmsan.Cli.Output.CliConsole(TextWriter.Null, TextWriter.Null));
        var run = root.Subcommands.Single(c => c.Name == "run");
        var valueOptions = run.Options.Where(o => o.ValueType != typeof(bool)).ToList();
        Assert.Contains(valueOptions, o => o.Name == "--from-image");
        foreach (var o in valueOptions)
            foreach (var name in (IEnumerable<string>)[o.Name, .. o.Aliases])
            {
                var rewritten = ArgvRewriter.Rewrite(["run", name, "VALUE", "cmd", "-x"]);
                Assert.True(rewritten.SequenceEqual(["run", name, "VALUE", "--", "cmd", "-x"]), $"{name}: {string.Join(' ', rewritten)}");
            }
    }

    [Theory]
    [InlineData("run --rm --from-image localhost:5000/team/app:1.2 --insecure-registry", "run --rm --from-image localhost:5000/team/app:1.2 --insecure-registry")]
    [InlineData("run --from-image oci:./dir:tag --platform linux/amd64 sh -c x", "run --from-image oci:./dir:tag --platform linux/amd64 -- sh -c x")]
    public void Run_with_an_image_and_no_command_is_left_without_a_command(string input, string expected)
    {
        Assert.Equal(expected, string.Join(' ', ArgvRewriter.Rewrite(input.Split(' '))));
    }
}
