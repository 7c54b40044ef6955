using System.Text.Json;
using System.Text.RegularExpressions;
using Vmsan.Cli;
using Vmsan.Cli.Output;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.Cli;

/// <summary>
/// The CLI end to end, short of booting anything. All in one class because the CLI reads its home
/// from the process environment (xunit runs one class's tests one at a time).
/// </summary>
public sealed partial class CliAppTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("VMSAN_HOME");
    private readonly string? _savedAssets = Environment.GetEnvironmentVariable("VMSAN_ASSETS");

    public CliAppTests()
    {
        Environment.SetEnvironmentVariable("VMSAN_HOME", _tmp.Combine("home"));
        Environment.SetEnvironmentVariable("VMSAN_ASSETS", _tmp.Combine("assets"));
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("VMSAN_HOME", _savedHome);
        Environment.SetEnvironmentVariable("VMSAN_ASSETS", _savedAssets);
        _tmp.Dispose();
    }

    private sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs the CLI as Program.cs does (argv rewritten first).</summary>
    private static async Task<Result> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(ArgvRewriter.Rewrite(args), new CliConsole(stdout, stderr))
            .WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Asserts stdout is exactly one <c>{"error":{code,message,fix}}</c> document.</summary>
    private static void AssertJsonError(Result result, string code)
    {
        Assert.Equal(ExitCodes.Error, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        var root = doc.RootElement;
        Assert.Equal(["error"], root.EnumerateObject().Select(p => p.Name));
        var error = root.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("fix").GetString()));
    }

    [Fact]
    public async Task Create_with_zero_vcpus_prints_an_INVALID_ARGUMENT_json_error_and_creates_nothing()
    {
        var result = await RunAsync("create", "--vcpus", "0", "--json");

        AssertJsonError(result, "INVALID_ARGUMENT");
        Assert.Contains("--vcpus", result.Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_tmp.Combine("home", "vms")) && Directory.EnumerateFileSystemEntries(_tmp.Combine("home", "vms")).Any(),
            "no VM directory may be created for invalid options");
    }

    [Theory]
    [InlineData("create", "--disk", "lots", "--json")]
    [InlineData("create", "--memory", "64", "--json")]
    [InlineData("create", "--accel", "hvf", "--json")]
    [InlineData("--json", "run", "--runtime", "a b", "true")]
    [InlineData("--json", "run", "--timeout", "soon", "true")]
    [InlineData("--json", "run", "-e", "NOEQUALS", "true")]
    public async Task Invalid_create_and_run_values_are_INVALID_ARGUMENT(params string[] args)
    {
        var result = await RunAsync(args);

        AssertJsonError(result, "INVALID_ARGUMENT");
        Assert.False(Directory.Exists(_tmp.Combine("home", "vms")) && Directory.EnumerateFileSystemEntries(_tmp.Combine("home", "vms")).Any());
    }

    [Theory]
    [InlineData("create", "--bogus", "--json")]
    [InlineData("list", "--nope", "--json")]
    [InlineData("--json", "frobnicate")]
    [InlineData("--json", "create", "--vcpus", "two")]
    public async Task A_parse_error_is_an_INVALID_ARGUMENT_json_error(params string[] args)
    {
        var result = await RunAsync(args);

        AssertJsonError(result, "INVALID_ARGUMENT");
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public async Task Exec_into_an_unknown_vm_is_VM_NOT_FOUND()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "exec checks for root before looking the VM up");

        var result = await RunAsync("--json", "exec", "vm-00000000", "true");

        AssertJsonError(result, "VM_NOT_FOUND");
        Assert.Contains("vm-00000000", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_into_an_unknown_vm_is_VM_NOT_FOUND_with_json_after_the_id_when_argv_is_not_rewritten()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "exec checks for root before looking the VM up");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await CliApp.RunAsync(["exec", "vm-00000000", "true", "--json"], new CliConsole(stdout, stderr));

        AssertJsonError(new Result(code, stdout.ToString(), stderr.ToString()), "VM_NOT_FOUND");
    }

    [Theory]
    [InlineData("get", "not-an-id")]
    [InlineData("stop", "vm-00000000")]
    [InlineData("logs", "vm-00000000")]
    public async Task Commands_on_unknown_vms_are_VM_NOT_FOUND(params string[] args)
    {
        var result = await RunAsync(["--json", .. args]);

        AssertJsonError(result, "VM_NOT_FOUND");
    }

    [Fact]
    public async Task Human_mode_prints_the_error_and_fix_to_stderr_and_nothing_to_stdout()
    {
        var result = await RunAsync("create", "--vcpus", "0");

        Assert.Equal(ExitCodes.Error, result.ExitCode);
        Assert.Equal("", result.Stdout);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("error [INVALID_ARGUMENT]: --vcpus must be between 1 and 32", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("  fix: ", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Human_mode_parse_errors_go_to_stderr()
    {
        var result = await RunAsync("list", "--nope");

        Assert.Equal(ExitCodes.Error, result.ExitCode);
        Assert.Equal("", result.Stdout);
        Assert.StartsWith("error [INVALID_ARGUMENT]: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("\n  fix: Run `vmsan list --help`.", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_of_an_empty_home_is_an_empty_json_array()
    {
        var result = await RunAsync("list", "--json");

        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        Assert.Equal(0, doc.RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Help_lists_every_public_command_and_hides_the_supervisor()
    {
        var result = await RunAsync("--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var command in (string[])["create", "list", "start", "stop", "remove", "exec", "run", "logs", "doctor"])
            Assert.Matches(new Regex($@"(?m)^\s+{command}\b"), result.Stdout);
        Assert.DoesNotContain("__supervise", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("--json", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_help_shows_its_options()
    {
        var result = await RunAsync("exec", "--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var option in (string[])["--env", "--workdir", "--user", "--timeout"])
            Assert.Contains(option, result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_of_a_runtime_that_is_not_built_points_at_vmsan_runtimes_build_and_an_unknown_one_lists_the_known()
    {
        // Installed assets with a kernel and the python3.13 recipe, but no image of it.
        var assets = Environment.GetEnvironmentVariable("VMSAN_ASSETS")!;
        Directory.CreateDirectory(Path.Combine(assets, "kernel"));
        File.WriteAllText(Path.Combine(assets, "kernel", "vmlinux"), "");
        File.WriteAllText(Path.Combine(assets, "kernel", "initrd.img"), "");
        Directory.CreateDirectory(Path.Combine(assets, "recipes"));
        File.WriteAllText(Path.Combine(assets, "recipes", "python3.13.json"), """{"name":"python3.13","debs":["python3"]}""");
        var vms = Path.Combine(Environment.GetEnvironmentVariable("VMSAN_HOME")!, "vms");

        var notBuilt = await RunAsync("create", "--runtime", "python3.13", "--json");
        var unknown = await RunAsync("create", "--runtime", "python9", "--json");

        AssertJsonError(notBuilt, "RUNTIME_NOT_FOUND");
        var fix = JsonDocument.Parse(notBuilt.Stdout).RootElement.GetProperty("error").GetProperty("fix").GetString();
        Assert.Equal("Run `vmsan runtimes build python3.13`.", fix);
        AssertJsonError(unknown, "RUNTIME_NOT_FOUND");
        var error = JsonDocument.Parse(unknown.Stdout).RootElement.GetProperty("error");
        Assert.Contains("no recipe for runtime 'python9'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("Known: python3.13.", error.GetProperty("fix").GetString());
        Assert.False(Directory.Exists(vms) && Directory.EnumerateFileSystemEntries(vms).Any(), "no VM directory may be created");
    }

    [Fact]
    public async Task Stop_and_start_of_an_unknown_id_say_VM_NOT_FOUND_and_leave_nothing_for_rm_to_remove()
    {
        var vms = Path.Combine(Environment.GetEnvironmentVariable("VMSAN_HOME")!, "vms");

        var stop = await RunAsync("stop", "vm-0000abcd", "--json");
        var start = await RunAsync("start", "vm-0000abcd", "--json");
        var rm = await RunAsync("rm", "-f", "vm-0000abcd", "--json");

        AssertJsonError(stop, "VM_NOT_FOUND");
        AssertJsonError(start, "VM_NOT_FOUND");
        AssertJsonError(rm, "VM_NOT_FOUND");
        Assert.False(Directory.Exists(Path.Combine(vms, "vm-0000abcd")));
    }
}
