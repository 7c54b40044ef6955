using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>Whatever ends a VM, its supervisor cleans up and vmsan never reports it running.</summary>
public sealed class CrashTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    [Fact]
    public async Task A_vm_whose_qemu_is_sigkilled_is_listed_stopped_and_can_start_again()
    {
        // A disk bigger than the runtime image: the agent grows the root filesystem online.
        var id = await _w.CreateVm("--disk", "6G");
        var sizeMib = 0;
        for (var i = 0; i < 50 && sizeMib < 5500; i++)
        {
            var df = await _w.Vmsan("exec", id, "--", "sh", "-c", "df -m / | tail -1 | awk '{print $2}'");
            sizeMib = int.TryParse(df.Stdout.Trim(), out var v) ? v : 0;
            if (sizeMib < 5500)
                await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.InRange(sizeMib, 5500, 6200);
        var pid = _w.State(id)!.Value.GetProperty("vmm").GetProperty("pid").GetInt32();

        await Sh.Check($"kill -9 {pid}");
        // SIGKILL is sent, not yet done: a loaded host may take a while to tear the VMM down (its RAM mappings
        // included). Until /proc shows it gone or a zombie it is still running, and may be listed so.
        static bool Running(int p)
        {
            try
            {
                var st = File.ReadAllText($"/proc/{p}/stat");
                return st[(st.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
            }
            catch (IOException)
            {
                return false; // gone (FileNotFound/DirectoryNotFound are IOExceptions)
            }
        }
        for (var i = 0; i < 250 && Running(pid); i++)
            await Task.Delay(20, TestContext.Current.CancellationToken);
        Assert.False(Running(pid), $"the VMM {pid} is still running 5 s after SIGKILL");

        // The supervisor notices at once; list must never claim "running" for a dead VMM.
        var status = "";
        for (var i = 0; i < 100 && status != "stopped"; i++)
        {
            var list = await _w.VmsanJson("list");
            status = list.EnumerateArray().Single(e => e.GetProperty("id").GetString() == id).GetProperty("status").GetString()!;
            Assert.NotEqual("running", status);
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        Assert.Equal("stopped", status);
        var state = _w.State(id)!.Value;
        Assert.Contains("unexpectedly", state.GetProperty("stopReason").GetString());
        Assert.DoesNotContain(await _w.Leftovers(id), l => !l.StartsWith("state dir", StringComparison.Ordinal));

        var start = await _w.Vmsan("start", id);
        Assert.True(start.ExitCode == 0, start.ToString());
        Assert.Equal(0, (await _w.Vmsan("exec", id, "true")).ExitCode);
        Assert.Equal(0, (await _w.Vmsan("rm", "-f", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
    }

    [Fact]
    public async Task When_the_supervisor_and_qemu_both_die_the_next_command_reconciles()
    {
        var id = await _w.CreateVm();
        var st = _w.State(id)!.Value;
        var sup = st.GetProperty("supervisor").GetProperty("pid").GetInt32();
        var vmm = st.GetProperty("vmm").GetProperty("pid").GetInt32();
        await Sh.Check($"kill -9 {sup} {vmm}");
        await Task.Delay(300, TestContext.Current.CancellationToken);

        var list = await _w.VmsanJson("list");
        Assert.Equal("stopped", list.EnumerateArray().Single(e => e.GetProperty("id").GetString() == id).GetProperty("status").GetString());
        Assert.DoesNotContain(await _w.Leftovers(id), l => !l.StartsWith("state dir", StringComparison.Ordinal));

        var doctor = await _w.Vmsan("doctor", "--json");
        Assert.True(doctor.ExitCode == 0, doctor.ToString());
        Assert.Equal(0, (await _w.Vmsan("rm", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
    }

    [Fact]
    public async Task Killing_every_vmsan_process_mid_boot_leaves_nothing_that_the_next_commands_cannot_clean()
    {
        using var cli = _w.StartVmsan("create", "--memory", "256");

        // Wait until the supervisor has recorded itself (the VM is booting), then kill everything at once.
        string? id = null;
        JsonElement state = default;
        for (var i = 0; i < 200; i++)
        {
            var dirs = Directory.Exists(Path.Combine(_w.Home, "vms")) ? Directory.GetDirectories(Path.Combine(_w.Home, "vms")) : [];
            id = dirs.Select(Path.GetFileName).FirstOrDefault();
            if (id is not null && _w.State(id) is { } st && st.TryGetProperty("supervisor", out _))
            {
                state = st;
                break;
            }
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
        Assert.NotNull(id);
        var pids = new List<int> { cli.Id, state.GetProperty("supervisor").GetProperty("pid").GetInt32() };
        if (_w.State(id)!.Value.TryGetProperty("vmm", out var vmm))
            pids.Add(vmm.GetProperty("pid").GetInt32());
        await Sh.Bash($"kill -9 {string.Join(' ', pids)}; pkill -9 -f -- '-name {id} ' || true");
        await cli.WaitForExitAsync(TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken);

        var list = await _w.VmsanJson("list");
        var status = list.EnumerateArray().Single(e => e.GetProperty("id").GetString() == id).GetProperty("status").GetString();
        // Everything vmsan ran is dead, the supervisor included: never "starting" forever.
        Assert.Contains(status, new[] { "error", "stopped" });
        var doctor = await _w.Vmsan("doctor", "--json");
        Assert.True(doctor.ExitCode == 0, doctor.ToString());
        Assert.Equal(0, (await _w.Vmsan("rm", "-f", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
    }

    [Fact]
    public async Task Ctrl_c_of_create_mid_boot_is_INTERRUPTED_130_and_rm_f_leaves_nothing()
    {
        using var cli = _w.StartVmsan("create", "--memory", "256");
        var stderr = cli.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        // As soon as the supervisor has recorded itself: create is waiting for the boot.
        string? id = null;
        for (var i = 0; i < 500 && id is null; i++)
        {
            var dirs = Directory.Exists(Path.Combine(_w.Home, "vms")) ? Directory.GetDirectories(Path.Combine(_w.Home, "vms")) : [];
            id = dirs.Select(Path.GetFileName).FirstOrDefault(d => _w.State(d!) is { } st && st.TryGetProperty("supervisor", out _));
            if (id is null)
                await Task.Delay(20, TestContext.Current.CancellationToken);
        }
        Assert.NotNull(id);
        await Sh.Check($"kill -INT {cli.Id}");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await cli.WaitForExitAsync(cts.Token);
        var err = await stderr;
        Assert.True(cli.ExitCode == 130, $"exit {cli.ExitCode}: {err}");
        Assert.Equal("error [INTERRUPTED]: Interrupted by SIGINT.", err.Trim().Split('\n')[^1]);

        // The VM's own supervisor is detached from the terminal and finishes or fails the boot on its own; the VM is
        // an ordinary one that rm -f removes with everything it owns.
        var rm = await _w.Vmsan("rm", "-f", id);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Empty(await _w.Leftovers(id));
    }

    [Fact]
    public async Task A_supervisor_sigkilled_during_boot_is_detected_and_its_orphaned_qemu_killed_with_the_reason_recorded()
    {
        using var cli = _w.StartVmsan("create", "--memory", "256");

        // Wait until QEMU runs and the VM is still booting, then kill the CLI and the supervisor, not QEMU.
        string? id = null;
        JsonElement state = default;
        for (var i = 0; i < 1000 && id is null; i++)
        {
            var dirs = Directory.Exists(Path.Combine(_w.Home, "vms")) ? Directory.GetDirectories(Path.Combine(_w.Home, "vms")) : [];
            foreach (var dir in dirs)
            {
                if (_w.State(Path.GetFileName(dir)) is { } st && st.TryGetProperty("vmm", out var v) && v.ValueKind == JsonValueKind.Object
                    && st.GetProperty("status").GetString() == "starting")
                {
                    (id, state) = (Path.GetFileName(dir), st);
                }
            }
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
        Assert.NotNull(id);
        var supervisor = state.GetProperty("supervisor").GetProperty("pid").GetInt32();
        var qemu = state.GetProperty("vmm").GetProperty("pid").GetInt32();
        await Sh.Check($"kill -9 {cli.Id} {supervisor}");
        await cli.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(Directory.Exists($"/proc/{qemu}"), "QEMU died with its supervisor: this test would prove nothing");

        // doctor is the next command: it must see the dead supervisor, kill the orphan and say so.
        var doctor = await _w.Vmsan("doctor", "--json");
        Assert.True(doctor.ExitCode == 0, doctor.ToString());
        var repaired = JsonDocument.Parse(doctor.Stdout).RootElement.GetProperty("repaired").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Contains(repaired, r => r.StartsWith(id, StringComparison.Ordinal) && r.Contains("supervisor", StringComparison.Ordinal));
        // And it says how far the VMs' thin disks could grow against the free space (one VM of 4 GiB here).
        var disk = JsonDocument.Parse(doctor.Stdout).RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "disk space");
        Assert.Matches(@"^1 VM disk could grow by [34]\.\d GiB; \d+\.\d GiB free on ", disk.GetProperty("detail").GetString());
        for (var i = 0; i < 100 && Directory.Exists($"/proc/{qemu}"); i++)
            await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(Directory.Exists($"/proc/{qemu}"), $"orphaned QEMU {qemu} still runs");

        var vm = (await _w.VmsanJson("list")).EnumerateArray().Single(e => e.GetProperty("id").GetString() == id);
        Assert.Equal("error", vm.GetProperty("status").GetString());
        Assert.Contains("supervisor", vm.GetProperty("stopReason").GetString());
        Assert.DoesNotContain(await _w.Leftovers(id), l => !l.StartsWith("state dir", StringComparison.Ordinal));
        Assert.Equal(0, (await _w.Vmsan("rm", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
    }

    /// <summary>
    /// The issue's "must keep holding": 12 SIGKILLs, each of a random one of the CLI (mid-create), the supervisor or
    /// QEMU, at a random moment of a boot; after each, `rm -f` leaves nothing (no process, namespace, link, file).
    /// One slow story, run once; the seed is printed so a failure can be replayed.
    /// </summary>
    [Fact]
    public async Task Twelve_random_sigkills_of_cli_supervisor_or_qemu_leave_nothing_after_rm_f()
    {
        var seed = Environment.GetEnvironmentVariable("VMSAN_CRASH_SEED") is { } s && int.TryParse(s, out var v) ? v : Random.Shared.Next();
        TestContext.Current.SendDiagnosticMessage($"VMSAN_CRASH_SEED={seed}");
        var rng = new Random(seed);
        var vmsDir = Path.Combine(_w.Home, "vms");
        for (var round = 0; round < 12; round++)
        {
            var target = (string[])["cli", "supervisor", "qemu"];
            var victim = target[rng.Next(target.Length)];
            var extraDelay = rng.Next(0, 1500);
            var before = Directory.Exists(vmsDir) ? Directory.GetDirectories(vmsDir).ToHashSet() : [];
            var psi = new System.Diagnostics.ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])["netns", "exec", _w.HostNs, VmsanWorld.Cli, "create", "--memory", "128"])
                psi.ArgumentList.Add(a);
            psi.Environment["VMSAN_HOME"] = _w.Home;
            using var cli = System.Diagnostics.Process.Start(psi)!;
            var output = Task.WhenAll(cli.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken), cli.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken));

            string? NewId() => (Directory.Exists(vmsDir) ? Directory.GetDirectories(vmsDir) : []).Where(d => !before.Contains(d)).Select(Path.GetFileName).FirstOrDefault();
            int? pid = null;
            if (victim == "cli")
            {
                await Task.Delay(rng.Next(0, 3000), TestContext.Current.CancellationToken);
                pid = cli.HasExited ? null : cli.Id;
            }
            else
            {
                // Until the victim exists (recorded in the state), then a random moment of the rest of the boot.
                var field = victim == "qemu" ? "vmm" : "supervisor";
                for (var i = 0; i < 3000 && pid is null && !cli.HasExited; i++)
                {
                    if (NewId() is { } id && _w.State(id) is { } st && st.TryGetProperty(field, out var p) && p.ValueKind == JsonValueKind.Object)
                        pid = p.GetProperty("pid").GetInt32();
                    else
                        await Task.Delay(10, TestContext.Current.CancellationToken);
                }
                await Task.Delay(extraDelay, TestContext.Current.CancellationToken);
            }
            if (pid is { } kill)
                await Sh.Bash($"kill -9 {kill}");
            using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4)))
                await cli.WaitForExitAsync(cts.Token);
            await output;
            var vm = NewId();
            TestContext.Current.SendDiagnosticMessage($"round {round}: SIGKILL {victim} (pid {pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none: already done"}) of {vm ?? "no VM yet"}; create exited {cli.ExitCode}");
            if (vm is null)
                continue;
            var rm = await _w.Vmsan("rm", "-f", vm);
            Assert.True(rm.ExitCode == 0, $"round {round} ({victim}): {rm}");
            Assert.Empty(await _w.Leftovers(vm));
        }
        var doctor = await _w.Vmsan("doctor", "--json");
        Assert.True(doctor.ExitCode == 0, doctor.ToString());
        Assert.Empty((await _w.VmsanJson("list")).EnumerateArray());
    }
}
