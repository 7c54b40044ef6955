using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>The spine's user story on one VM, in order: create, exec, list, logs, stop, start, egress, rm.</summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class LifecycleTests(LifecycleTests.Vm vm) : IClassFixture<LifecycleTests.Vm>
{
    public sealed class Vm : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public string Id { get; private set; } = "";
        public JsonElement Created { get; private set; }

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Created = await World.VmsanJson("create", "--memory", "256");
            Id = Created.GetProperty("id").GetString()!;
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vm.World;

    [Fact]
    public void Create_json_reports_a_running_vm_with_its_settings()
    {
        Assert.Matches("^vm-[0-9a-f]{8}$", vm.Id);
        Assert.Equal("running", vm.Created.GetProperty("status").GetString());
        Assert.Equal(256, vm.Created.GetProperty("memoryMib").GetInt32());
        Assert.Equal(1, vm.Created.GetProperty("vcpus").GetInt32());
        Assert.Equal("base", vm.Created.GetProperty("runtime").GetString());
        Assert.Contains(vm.Created.GetProperty("accel").GetString(), new[] { "tcg", "kvm" });
    }

    [Fact]
    public async Task Exec_passes_every_argument_after_the_id_to_the_command()
    {
        var r = await W.Vmsan("exec", vm.Id, "ls", "-la", "/");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("drwx", r.Stdout);          // -l took effect
        Assert.Contains(" ..", r.Stdout);           // -a took effect
        Assert.Contains("etc", r.Stdout);
    }

    [Fact]
    public async Task Exec_keeps_stdout_and_stderr_apart_and_returns_the_exit_code()
    {
        var r = await W.Vmsan("exec", vm.Id, "sh", "-c", "echo out; echo err >&2; exit 7");
        Assert.Equal(7, r.ExitCode);
        Assert.Equal("out\n", r.Stdout);
        Assert.Equal("err\n", r.Stderr);
    }

    [Fact]
    public async Task The_guest_hostname_is_the_vm_id_and_the_token_is_not_in_its_environment()
    {
        var r = await W.Vmsan("exec", vm.Id, "sh", "-c", "hostname; env");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith(vm.Id + "\n", r.Stdout);
        Assert.DoesNotContain("TOKEN", r.Stdout, StringComparison.OrdinalIgnoreCase);
        var cmdline = await W.Vmsan("exec", vm.Id, "cat", "/proc/cmdline");
        Assert.DoesNotContain("TOKEN", cmdline.Stdout, StringComparison.OrdinalIgnoreCase);
        var token = File.ReadAllText(Path.Combine(W.Home, "vms", vm.Id, "secrets.json"));
        var secret = JsonDocument.Parse(token).RootElement.GetProperty("token").GetString()!;
        var grep = await W.Vmsan("exec", vm.Id, "sh", "-c", $"grep -rl {secret} /run /etc /tmp /proc/1/environ 2>/dev/null; true");
        Assert.Equal("", grep.Stdout.Trim());
    }

    [Fact]
    public async Task Exec_json_returns_output_and_exit_code_as_one_document()
    {
        var r = await W.Vmsan("exec", "--json", vm.Id, "sh", "-c", "printf hi; exit 3");
        Assert.Equal(3, r.ExitCode);
        var doc = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(3, doc.GetProperty("exitCode").GetInt32());
        Assert.Equal("hi", doc.GetProperty("stdout").GetString());
    }

    [Fact]
    public async Task List_shows_the_vm_running_as_a_table_and_as_json()
    {
        var table = await W.Vmsan("list");
        Assert.Equal(0, table.ExitCode);
        Assert.StartsWith("ID", table.Stdout);
        Assert.Contains(vm.Id, table.Stdout);
        Assert.Contains("running", table.Stdout);
        var json = await W.VmsanJson("ls");
        var entry = json.EnumerateArray().Single(e => e.GetProperty("id").GetString() == vm.Id);
        Assert.Equal("running", entry.GetProperty("status").GetString());
        Assert.True(entry.GetProperty("pid").GetInt32() > 0);
    }

    [Fact]
    public async Task Logs_show_the_guest_serial_console()
    {
        var r = await W.Vmsan("logs", vm.Id);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("vmsan-agent", r.Stdout);
    }

    [Fact]
    public async Task The_guest_reaches_the_uplink_through_nat()
    {
        var (peer, port) = await W.UplinkEchoServer();
        var r = await W.Vmsan("exec", vm.Id, "bash", "-c", $"exec 3<>/dev/tcp/{VmsanWorld.UplinkAddress}/{port}; cat <&3");
        Assert.True(r.ExitCode == 0, r.ToString());
        // The uplink sees the host namespace's address: the guest is masqueraded twice.
        Assert.Equal($"hello {VmsanWorld.HostAddress}\n", r.Stdout);
        Assert.Equal(VmsanWorld.HostAddress, await peer);
    }

    [Fact]
    public async Task Stop_is_graceful_and_start_boots_the_same_disk_again()
    {
        var write = await W.Vmsan("exec", "--user", "root", vm.Id, "sh", "-c", "echo kept > /root/marker");
        Assert.Equal(0, write.ExitCode);

        var stop = await W.Vmsan("stop", vm.Id);
        Assert.True(stop.ExitCode == 0, stop.ToString());
        var state = W.State(vm.Id)!.Value;
        Assert.Equal("stopped", state.GetProperty("status").GetString());
        Assert.Equal("stopped", state.GetProperty("stopReason").GetString());
        Assert.DoesNotContain(await W.Leftovers(vm.Id), l => !l.StartsWith("state dir", StringComparison.Ordinal));
        var exec = await W.Vmsan("exec", "--json", vm.Id, "true");
        Assert.Equal(1, exec.ExitCode);

        var start = await W.Vmsan("start", vm.Id);
        Assert.True(start.ExitCode == 0, start.ToString());
        var read = await W.Vmsan("exec", "--user", "root", vm.Id, "cat", "/root/marker");
        Assert.Equal("kept\n", read.Stdout);
        Assert.Equal(0, (await W.Vmsan("exec", vm.Id, "true")).ExitCode);
    }

    [Fact]
    public async Task Rm_f_of_a_running_vm_leaves_nothing_behind()
    {
        var rm = await W.Vmsan("rm", "-f", vm.Id);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(await W.Leftovers(vm.Id));
        var get = await W.Vmsan("exec", "--json", vm.Id, "true");
        Assert.Equal(1, get.ExitCode);
        Assert.Equal("VM_NOT_FOUND", JsonDocument.Parse(get.Stdout).RootElement.GetProperty("error").GetProperty("code").GetString());
    }
}
