using System.Globalization;
using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// The QEMU process of a real VM, seen from the host: unprivileged, no capability, seccomp on,
/// chrooted, inside its cgroup with limits from the VM's size that really hold (CPU, memory).
/// Two VMs: one for the checks and the CPU quota, one sized to be OOM-killed by its cgroup.
/// </summary>
public sealed class VmmConfinementTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();

    public ValueTask InitializeAsync() => _w.InitializeAsync();

    public ValueTask DisposeAsync() => _w.DisposeAsync();

    private static Dictionary<string, string> Status(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim());

    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime are fields 14 and 15 (f[11], f[12]), in clock ticks (100 Hz).
        return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>Nothing of a VM on the host is readable by anyone but root and (its own files) its VMM's uid.</summary>
    private async Task AssertHostFilesPrivate(string id, string vmmUid)
    {
        var dir = Path.Combine(_w.Home, "vms", id);
        var dirMode = (int)File.GetUnixFileMode(dir);
        // 0710: the VMMs' group may pass through (QEMU reopens its disk by path after its uid switch), nothing more.
        Assert.True(dirMode is 0x1C0 or 0x1C8, $"{dir} is {Convert.ToString(dirMode, 8)}");
        var entries = Directory.GetFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 });
        Assert.Contains(entries, e => Path.GetFileName(e) == "disk.qcow2");
        Assert.Contains(entries, e => Path.GetFileName(e) == "console.log");
        Assert.Contains(entries, e => Path.GetFileName(e) == "qmp.sock");
        var jail = Path.Combine(dir, "jail") + "/";
        foreach (var e in entries)
        {
            // The jail itself (an entry here) is 0700 and the VMM uid's: nobody else can reach anything below it,
            // whatever its modes (jail/tmp is 0711 since the snapshot work landed).
            if (e.StartsWith(jail, StringComparison.Ordinal))
                continue;
            var mode = (int)File.GetUnixFileMode(e);
            Assert.True((mode & 0x3F) == 0, $"{e} is {Convert.ToString(mode, 8)}: group or others have access");
        }
        foreach (var own in (string[])["disk.qcow2", "console.log"])
            Assert.Equal(vmmUid, (await Sh.Check($"stat -c %u {Path.Combine(dir, own)}")).Trim());
    }

    [Fact]
    public async Task A_confined_qemu_has_no_root_no_capability_seccomp_a_chroot_a_cgroup_that_caps_its_cpu_and_private_files()
    {
        var vm = await _w.VmsanJson("create", "--memory", "256", "--vcpus", "1");
        var id = vm.GetProperty("id").GetString()!;
        var pid = vm.GetProperty("pid").GetInt32();
        var conf = vm.GetProperty("confinement");
        Assert.True(conf.GetProperty("seccomp").GetBoolean());

        var st = Status(pid);
        var uid = st["Uid"].Split('\t', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(uid, u => Assert.NotEqual("0", u));
        Assert.Equal(conf.GetProperty("user").GetString()!.Split(':')[0], uid[0]);
        Assert.Equal("2", st["Seccomp"]);
        Assert.Equal("0000000000000000", st["CapEff"]);
        Assert.Equal("0000000000000000", st["CapPrm"]);
        Assert.Equal("0000000000000000", st["CapBnd"]);
        Assert.Equal("0000000000000000", st["CapAmb"]);
        Assert.Equal("1", st["NoNewPrivs"]);
        await AssertHostFilesPrivate(id, uid[0]);
        var jail = conf.GetProperty("jail").GetString()!;
        Assert.Equal(jail, new DirectoryInfo($"/proc/{pid}/root").LinkTarget);
        // The jail holds nothing but the VM's disk chain, each file at its own absolute path as a hard link (the same
        // inode), which QEMU reopens by path at a snapshot's disk freeze and migration end.
        var state = _w.State(id)!.Value;
        var disk = Path.Combine(_w.Home, "vms", id, "disk.qcow2");
        var inJail = Directory.EnumerateFiles(jail, "*", SearchOption.AllDirectories).Select(f => f[jail.Length..]).Order().ToList();
        Assert.Contains(disk, inJail);
        // The base image too, when it is on the jail's filesystem (a hard link cannot cross filesystems).
        Assert.All(inJail, f => Assert.Contains(f, (string[])[disk, state.GetProperty("baseImage").GetString()!]));
        foreach (var f in inJail)
            Assert.Equal(new FileInfo(f).Length, new FileInfo(jail + f).Length);
        Assert.Equal((await Sh.Bash($"stat -c %i {disk}")).Stdout, (await Sh.Bash($"stat -c %i {jail}{disk}")).Stdout);

        // In its cgroup, with the limits from the VM's size.
        var limits = conf.GetProperty("limits");
        var paths = limits.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!).ToList();
        foreach (var dir in paths)
            Assert.Contains(pid.ToString(CultureInfo.InvariantCulture), File.ReadAllLines(Path.Combine(dir, "cgroup.procs")));
        var memMax = limits.GetProperty("memoryMaxMib").GetInt64() * 1024 * 1024;
        Assert.True(memMax > 256L * 1024 * 1024);
        foreach (var dir in paths)
        {
            if (File.Exists(Path.Combine(dir, "memory.limit_in_bytes")))
                Assert.Equal(memMax, long.Parse(File.ReadAllText(Path.Combine(dir, "memory.limit_in_bytes")), CultureInfo.InvariantCulture));
            if (File.Exists(Path.Combine(dir, "memory.max")))
                Assert.Equal(memMax, long.Parse(File.ReadAllText(Path.Combine(dir, "memory.max")), CultureInfo.InvariantCulture));
            if (File.Exists(Path.Combine(dir, "cpu.cfs_quota_us")))
                Assert.Equal("100000", File.ReadAllText(Path.Combine(dir, "cpu.cfs_quota_us")).Trim());
            if (File.Exists(Path.Combine(dir, "cpu.max")))
                Assert.Equal("100000 100000", File.ReadAllText(Path.Combine(dir, "cpu.max")).Trim());
            if (File.Exists(Path.Combine(dir, "pids.max")))
                Assert.Equal(limits.GetProperty("pidsMax").GetInt32().ToString(CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir, "pids.max")).Trim());
        }

        // A busy guest (two spinning shells on its one vCPU) cannot take more than one host core.
        var spin = await _w.Vmsan("exec", "-d", id, "--", "sh", "-c", "while :; do :; done & while :; do :; done");
        Assert.True(spin.ExitCode == 0, spin.ToString());
        await Task.Delay(1500, TestContext.Current.CancellationToken);
        var c0 = CpuSeconds(pid);
        var t0 = DateTime.UtcNow;
        await Task.Delay(5000, TestContext.Current.CancellationToken);
        var cores = (CpuSeconds(pid) - c0) / (DateTime.UtcNow - t0).TotalSeconds;
        // 1.0 plus scheduler-accounting slack; an unlimited TCG QEMU adds its I/O and RCU threads on top.
        Assert.InRange(cores, 0.0, 1.1);
        var throttled = paths.Where(d => File.Exists(Path.Combine(d, "cpu.stat")))
            .SelectMany(d => File.ReadAllLines(Path.Combine(d, "cpu.stat"))).FirstOrDefault(l => l.StartsWith("nr_throttled ", StringComparison.Ordinal));
        TestContext.Current.SendDiagnosticMessage($"busy 1-vCPU guest: {cores:0.00} cores; {throttled}");

        Assert.Equal(0, (await _w.Vmsan("rm", "-f", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
        Assert.All(paths, d => Assert.False(Directory.Exists(d), $"{d} left behind"));
    }

    [Fact]
    public async Task A_guest_that_touches_more_memory_than_its_cgroup_allows_gets_its_vmm_oom_killed_and_the_vm_stopped_with_that_reason()
    {
        // No overhead allowance: the cgroup holds exactly the guest's RAM, so a guest that fills its
        // RAM pushes QEMU (RAM + its own memory) over the limit.
        var r = await Sh.RunAsync("ip", ["netns", "exec", _w.HostNs, VmsanWorld.Cli, "create", "--memory", "512", "--json"],
            new Dictionary<string, string> { ["VMSAN_HOME"] = _w.Home, ["VMSAN_CLI"] = VmsanWorld.Cli, ["VMSAN_VMM_MEMORY_OVERHEAD_MIB"] = "0" }, TimeSpan.FromMinutes(4));
        Assert.True(r.ExitCode == 0, r.ToString());
        var vm = JsonDocument.Parse(r.Stdout).RootElement;
        var id = vm.GetProperty("id").GetString()!;
        var pid = vm.GetProperty("pid").GetInt32();
        var limits = vm.GetProperty("confinement").GetProperty("limits");
        var limitBytes = limits.GetProperty("memoryMaxMib").GetInt64() * 1024 * 1024;
        var memDir = limits.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!)
            .First(d => File.Exists(Path.Combine(d, "memory.limit_in_bytes")) || File.Exists(Path.Combine(d, "memory.max")));
        // What the cgroup charged at its peak (v1 max_usage_in_bytes, v2 memory.peak).
        var peakFile = File.Exists(Path.Combine(memDir, "memory.max_usage_in_bytes")) ? Path.Combine(memDir, "memory.max_usage_in_bytes") : Path.Combine(memDir, "memory.peak");
        Assert.Equal(512L * 1024 * 1024, limitBytes);

        var fill = await _w.Vmsan("exec", "-d", "--user", "root", id, "--", "sh", "-c",
            "mkdir -p /mnt/fill && mount -t tmpfs -o size=500m none /mnt/fill && dd if=/dev/zero of=/mnt/fill/f bs=1M count=500");
        Assert.True(fill.ExitCode == 0, fill.ToString());
        long peakRss = 0, peakCharged = 0;
        string? reason = null;
        for (var i = 0; i < 600 && reason is null; i++)
        {
            try
            {
                // Anonymous memory: guest RAM and QEMU's heap (VmRSS also counts shared library
                // pages, which the page cache charges to whoever read them first).
                var rss = long.Parse(Status(pid)["RssAnon"].Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                peakRss = Math.Max(peakRss, rss);
                peakCharged = Math.Max(peakCharged, long.Parse(File.ReadAllText(peakFile).Trim(), CultureInfo.InvariantCulture));
            }
            catch (Exception ex) when (ex is IOException or KeyNotFoundException or FormatException)
            {
            }
            var state = _w.State(id)!.Value;
            if (state.GetProperty("status").GetString() == "stopped")
                reason = state.GetProperty("stopReason").GetString();
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        TestContext.Current.SendDiagnosticMessage($"peak QEMU anonymous RSS {peakRss / 1048576} MiB, peak cgroup charge {peakCharged / 1048576} MiB, limit {limitBytes / 1048576} MiB; stop reason: {reason}");
        Assert.InRange(peakRss, 1, limitBytes);
        Assert.InRange(peakCharged, 256L * 1024 * 1024, limitBytes);
        Assert.NotNull(reason);
        Assert.Contains("out-of-memory", reason);
        var get = await _w.VmsanJson("get", id);
        Assert.Equal("stopped", get.GetProperty("status").GetString());
        Assert.Equal(0, (await _w.Vmsan("rm", id)).ExitCode);
        Assert.Empty(await _w.Leftovers(id));
    }
}
