using System.Diagnostics;
using System.Text.Json;
using Vmsan.Cli.Commands;

namespace Vmsan.UnitTests.Cli;

public sealed partial class CliAppTests
{
    private void InstallFakeAssets()
    {
        Directory.CreateDirectory(_tmp.Combine("assets", "bin"));
        File.WriteAllText(_tmp.Combine("assets", "bin", "vmsan-agent"), "agent build 1");
        Directory.CreateDirectory(_tmp.Combine("assets", "kernel"));
        File.WriteAllText(_tmp.Combine("assets", "kernel", "package"), "linux-image-6.1.0-57-cloud-amd64 6.1.192-3\n");
        Directory.CreateDirectory(_tmp.Combine("assets", "runtimes", "python3.13"));
        File.WriteAllText(_tmp.Combine("assets", "runtimes", "python3.13", "manifest.json"),
            """{"name":"python3.13","version":"Python 3.13.5","builtAt":"2026-12-02T19:52:17Z","debianSuite":"trixie"}""");
    }

    [Fact]
    public async Task Version_json_reports_the_installed_agent_kernel_and_runtimes()
    {
        InstallFakeAssets();
        var r = await RunAsync("version", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var v = doc.RootElement;
        Assert.StartsWith("1.", v.GetProperty("cli").GetString(), StringComparison.Ordinal);
        // The digest of what is installed, not of what the build shipped: changing the file changes it.
        Assert.Equal("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("agent build 1"u8))[..12],
            v.GetProperty("agent").GetString());
        Assert.Equal("linux-image-6.1.0-57-cloud-amd64 6.1.192-3", v.GetProperty("kernel").GetString());
        var rt = Assert.Single(v.GetProperty("runtimes").EnumerateArray());
        Assert.Equal("python3.13", rt.GetProperty("name").GetString());
        Assert.Contains("Python 3.13.5", rt.GetProperty("version").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_flag_prints_the_same_table_as_the_version_command()
    {
        InstallFakeAssets();
        var flag = await RunAsync("--version");
        var verb = await RunAsync("version");
        Assert.Equal(0, flag.ExitCode);
        Assert.Equal(verb.Stdout, flag.Stdout);
        Assert.Contains("runtime python3.13", flag.Stdout, StringComparison.Ordinal);
        Assert.Contains("kernel", flag.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_without_assets_says_what_is_not_installed()
    {
        var r = await RunAsync("version");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("not installed", r.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bash")]
    [InlineData("zsh")]
    [InlineData("fish")]
    public async Task Completion_prints_a_script_that_asks_the_binary_for_suggestions(string shell)
    {
        var r = await RunAsync("completion", shell);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("[suggest:", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("vmsan", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_bash_completion_script_is_valid_bash_and_registers_vmsan()
    {
        var script = _tmp.Combine("vmsan.bash");
        File.WriteAllText(script, CompletionCommand.Script("bash"));
        var psi = new ProcessStartInfo("bash", ["-c", $"source {script} && complete -p vmsan"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("-F _vmsan_complete vmsan", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Completion_of_an_unknown_shell_is_INVALID_ARGUMENT()
    {
        var r = await RunAsync("completion", "tcsh", "--json");
        AssertJsonError(r, "INVALID_ARGUMENT");
    }

    [Fact]
    public async Task Suggestions_complete_commands_flags_and_the_ids_of_existing_vms()
    {
        foreach (var id in (string[])["vm-1a2b3c4d", "vm-0000beef"])
        {
            Directory.CreateDirectory(_tmp.Combine("home", "vms", id));
            File.WriteAllText(_tmp.Combine("home", "vms", id, "vm.json"), "{}");
        }
        var commands = await RunAsync("[suggest:8]", "vmsan st");
        Assert.Contains("stop", commands.Stdout.Split('\n'));
        Assert.Contains("start", commands.Stdout.Split('\n'));
        var flags = await RunAsync("[suggest:18]", "vmsan create --mem");
        Assert.Contains("--memory", flags.Stdout.Split('\n'));
        var ids = await RunAsync("[suggest:11]", "vmsan stop ");
        Assert.Contains("vm-1a2b3c4d", ids.Stdout.Split('\n'));
        Assert.Contains("vm-0000beef", ids.Stdout.Split('\n'));
    }
}
