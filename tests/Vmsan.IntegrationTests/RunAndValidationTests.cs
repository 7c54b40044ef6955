using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

public sealed class RunAndValidationTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    [Fact]
    public async Task Run_rm_creates_executes_and_removes_in_one_command()
    {
        var r = await _w.Vmsan("run", "--rm", "--memory", "256", "--", "uname", "-a");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("Linux vm-", r.Stdout);
        Assert.Empty((await _w.VmsanJson("list")).EnumerateArray());
        var dirs = Directory.Exists(Path.Combine(_w.Home, "vms")) ? Directory.GetDirectories(Path.Combine(_w.Home, "vms")) : [];
        Assert.Empty(dirs);
        var ns = await Sh.Bash($"ip -n {_w.HostNs} -o link show | grep -c vsn- || true");
        Assert.Equal("0", ns.Stdout.Trim());
    }

    [Theory]
    [InlineData("--vcpus", "0")]
    [InlineData("--vcpus", "33")]
    [InlineData("--memory", "64")]
    [InlineData("--memory", "40000")]
    [InlineData("--accel", "hyperv")]
    [InlineData("--disk", "lots")]
    [InlineData("--disk", "1G")]
    [InlineData("--kernel", "/nonexistent/vmlinux")]
    [InlineData("--bogus", "1")]
    public async Task Invalid_create_flags_are_rejected_before_anything_is_created(string flag, string value)
    {
        var r = await _w.Vmsan("create", flag, value, "--json");
        Assert.Equal(1, r.ExitCode);
        var error = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error");
        Assert.Equal("INVALID_ARGUMENT", error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrEmpty(error.GetProperty("fix").GetString()));
        Assert.False(Directory.Exists(Path.Combine(_w.Home, "vms")) && Directory.EnumerateFileSystemEntries(Path.Combine(_w.Home, "vms")).Any());
    }

    [Fact]
    public async Task Errors_are_human_readable_without_json()
    {
        var r = await _w.Vmsan("exec", "vm-00000000", "true");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Contains("VM_NOT_FOUND", r.Stderr);
        Assert.Contains("fix:", r.Stderr);
    }

    [Theory]
    [InlineData("stop", "vm-deadbeef")]
    [InlineData("start", "vm-deadbeef")]
    [InlineData("rm", "not-an-id")]
    [InlineData("logs", "vm-deadbeef")]
    public async Task Commands_on_unknown_vms_fail_with_vm_not_found(string verb, string id)
    {
        var r = await _w.Vmsan(verb, id, "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("VM_NOT_FOUND", JsonDocument.Parse(r.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Doctor_checks_every_prerequisite()
    {
        var r = await _w.Vmsan("doctor", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var checks = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("checks").EnumerateArray().ToList();
        Assert.Contains(checks, c => c.GetProperty("name").GetString() == "accelerator");
        Assert.Contains(checks, c => c.GetProperty("name").GetString() == "kernel");
        Assert.All(checks, c => Assert.True(c.GetProperty("ok").GetBoolean(), c.ToString()));
    }
}
