using System.CommandLine;
using System.Text;
using Vmsan.Cli.Output;
using Vmsan.Core.Errors;
using Vmsan.Diagnostics;

namespace Vmsan.Cli.Commands;

public static class VmCommands
{
    internal static Argument<string> IdArg()
    {
        var a = new Argument<string>("id") { Description = "VM id (vm-1a2b3c4d)" };
        CompletionCommand.AddVmIds(a);
        return a;
    }

    /// <summary>All ids checked before any is acted on, so a typo in the third id changes nothing.</summary>
    private static string[] ValidatedIds(ParseResult p, Argument<string[]> ids)
    {
        var all = p.GetValue(ids)!;
        foreach (var id in all)
            Vmsan.VmsanClient.ValidateId(id);
        return all;
    }

    private static void PrintIds(CommandContext ctx, IEnumerable<string> ids)
    {
        foreach (var id in ids)
            ctx.Console.Out.WriteLine(id);
    }

    private static Argument<string[]> IdsArg()
    {
        var a = new Argument<string[]>("ids") { Description = "VM ids", Arity = ArgumentArity.OneOrMore };
        CompletionCommand.AddVmIds(a);
        return a;
    }

    public static IEnumerable<Command> All(CommandContext ctx)
    {
        yield return Create(ctx);
        yield return List(ctx);
        yield return Start(ctx);
        yield return Stop(ctx);
        yield return Remove(ctx);
        yield return PauseCommands.Pause(ctx);
        yield return PauseCommands.Resume(ctx);
        yield return SnapshotCommands.Snapshot(ctx);
        yield return ImageCommands.Images(ctx);
        yield return RuntimeCommands.Runtimes(ctx);
        yield return ExecCommands.Exec(ctx);
        yield return ExecCommands.Run(ctx);
        yield return ExecSessionCommands.Ps(ctx);
        yield return ExecSessionCommands.Kill(ctx);
        yield return ExecSessionCommands.Connect(ctx);
        yield return FileCommands.Upload(ctx);
        yield return FileCommands.Download(ctx);
        yield return Logs(ctx);
        yield return DoctorCmd(ctx);
        yield return Get(ctx);
        yield return Timeout(ctx);
        yield return NetworkCommands.Network(ctx);
        yield return VersionCommand.Build(ctx);
        yield return CompletionCommand.Build(ctx);
    }

    internal sealed class CreateFlags
    {
        public readonly Option<int> Vcpus = new("--vcpus", "--cpus") { Description = "vCPUs (1-32)", DefaultValueFactory = _ => 1 };
        public readonly Option<int> Memory = new("--memory", "-m") { Description = "Memory in MiB (128-32768)", DefaultValueFactory = _ => 512 };
        public readonly Option<string?> Disk = new("--disk") { Description = "Disk size (MiB, or with unit: 8G); default 4G, and never less than the root image" };
        public readonly Option<string> Runtime = new("--runtime") { Description = "Runtime image: base, node22, python3.13", DefaultValueFactory = _ => "base" };
        public readonly Option<string?> Kernel = new("--kernel") { Description = "Boot this vmlinux instead of the installed kernel" };
        public readonly Option<string?> Rootfs = new("--rootfs") { Description = "Boot this ext4 image (used as a read-only base)" };
        public readonly Option<string> Accel = new("--accel") { Description = "Accelerator: auto, kvm, tcg", DefaultValueFactory = _ => "auto" };
        public readonly Option<string> Vmm = new("--vmm") { Description = "VMM: qemu, firecracker", DefaultValueFactory = _ => "qemu" };
        public readonly Option<bool> NoDropPrivileges = new("--no-drop-privileges") { Description = "Run the VMM as root with every capability (default: a per-VM unprivileged uid, no capabilities)" };
        public readonly Option<bool> NoSeccomp = new("--no-seccomp") { Description = "No seccomp filter on the VMM" };
        public readonly Option<bool> NoChroot = new("--no-chroot") { Description = "Do not chroot the VMM" };
        public readonly Option<bool> NoCgroup = new("--no-cgroup") { Description = "No per-VM cgroup (no memory, CPU or pids limits on the VMM)" };
        public readonly Option<string?> FromImage = new("--from-image") { Description = "Boot an OCI image: NAME[:TAG|@DIGEST], docker-archive:FILE, oci:DIR[:TAG], oci-archive:FILE[:TAG]" };
        public readonly ImageCommands.PullFlags Pull = new();
        public readonly Option<string?> Timeout = new("--timeout") { Description = "Stop (or pause, remove: --on-timeout) the VM this long after create (e.g. 10m, 2h, 1d)" };
        public readonly Option<string?> OnTimeout = new("--on-timeout") { Description = "What the timeout does: stop (default), pause, remove" };
        public readonly Option<bool> Cold = new("--cold") { Description = "Boot for real instead of resuming the runtime's boot snapshot (warm create, the default)" };
        private readonly NetworkCommands.CreateNetworkFlags _network = new();

        public (TimeSpan? Timeout, string OnTimeout) ReadTimeout(ParseResult p)
        {
            var timeout = p.GetValue(Timeout) is { } t ? Durations.ParseSpan(t, "--timeout") : (TimeSpan?)null;
            var action = p.GetValue(OnTimeout);
            TimeoutAction.Validate(timeout, action ?? TimeoutAction.Stop, explicitAction: action is not null);
            return (timeout, action ?? TimeoutAction.Stop);
        }

        public void AddTo(Command c)
        {
            foreach (var o in (Option[])[Vcpus, Memory, Disk, Runtime, Kernel, Rootfs, Accel, Vmm, NoDropPrivileges, NoSeccomp, NoChroot, NoCgroup, Timeout, OnTimeout, Cold])
                c.Options.Add(o);
            c.Options.Add(FromImage);
            Pull.AddTo(c);
            _network.AddTo(c);
        }

        /// <summary>
        /// <c>create --snapshot</c>: the timeout, and the network flags that replace the source's policy and ports. Size,
        /// image, kernel and confinement flags cannot apply to a VM resumed from saved memory: INVALID_ARGUMENT, never ignored.
        /// </summary>
        public CloneOptions ReadClone(ParseResult p)
        {
            var (timeout, onTimeout) = ReadTimeout(p);
            var fixedBySnapshot = ((Option[])[Vcpus, Memory, Disk, Runtime, Kernel, Rootfs, Accel, Vmm, NoDropPrivileges, NoSeccomp, NoChroot, NoCgroup, Cold, FromImage, .. Pull.Options])
                .Where(o => p.GetResult(o) is { Implicit: false })
                .Select(o => o.Name)
                .ToList();
            if (fixedBySnapshot.Count > 0)
                throw VmsanException.Invalid($"{string.Join(", ", fixedBySnapshot)} cannot be combined with --snapshot: a clone resumes the snapshot's memory, devices, disk and confinement as they were saved.",
                    "Drop those flags (the network flags and --timeout do apply to a clone), or create a new VM without --snapshot.");
            var o = new CloneOptions { Timeout = timeout, OnTimeout = onTimeout };
            o = _network.ApplyToClone(p, o);
            o.Check();
            return o;
        }

        public CreateOptions Read(ParseResult p)
        {
            var (timeout, onTimeout) = ReadTimeout(p);
            var o = new CreateOptions
            {
                Timeout = timeout,
                OnTimeout = onTimeout,
                Vcpus = p.GetValue(Vcpus),
                MemoryMib = p.GetValue(Memory),
                DiskMib = p.GetValue(Disk) is { } disk ? CreateOptions.SizeMib(disk, "--disk") : null,
                Runtime = p.GetValue(Runtime)!,
                Kernel = p.GetValue(Kernel),
                Rootfs = p.GetValue(Rootfs),
                Accel = p.GetValue(Accel)!,
                Vmm = p.GetValue(Vmm)!,
                DropPrivileges = !p.GetValue(NoDropPrivileges),
                Seccomp = !p.GetValue(NoSeccomp),
                Chroot = !p.GetValue(NoChroot),
                Cgroup = !p.GetValue(NoCgroup),
                FromImage = p.GetValue(FromImage),
                Cold = p.GetValue(Cold),
            };
            o = _network.Apply(p, o);
            Pull.Validate(p);
            o.Check();
            // Stdin (a password) is read only once everything else is known to be valid.
            return o.FromImage is null ? o : o with { ImagePull = Pull.Read(p) };
        }
    }

    private static Command Create(CommandContext ctx)
    {
        var cmd = new Command("create", "Create a VM and boot it; prints its id once the agent answers");
        var flags = new CreateFlags();
        flags.AddTo(cmd);
        var snapshot = new Option<string?>("--snapshot") { Description = "Resume a new VM from this snapshot (name or id); its sizes come from the snapshot, its policy and ports too unless given" };
        cmd.Options.Add(snapshot);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var vm = p.GetValue(snapshot) is { } snap
                ? await ctx.Client.CreateFromSnapshotAsync(snap, flags.ReadClone(p), ct).ConfigureAwait(false)
                : await CreateAsync(ctx, flags.Read(p), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(vm, CliJsonContext.Default.VmInfo);
            else
            {
                ctx.Console.Err.WriteLine($"created {vm.Id} ({vm.Runtime}, {vm.Vcpus} vCPU, {vm.MemoryMib} MiB, {vm.Accel}, {vm.Boot}) in {vm.BootMs} ms");
                ctx.Console.Out.WriteLine(vm.Id);
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>Create, with pull and conversion progress on stderr when the VM boots an image.</summary>
    internal static Task<VmInfo> CreateAsync(CommandContext ctx, CreateOptions options, CancellationToken ct) =>
        options.FromImage is null
            ? ctx.Client.CreateAsync(options, ct)
            : Progress.PullProgressDisplay.RunAsync(ctx.Console, progress => ctx.Client.CreateAsync(options with { ImageProgress = progress }, ct));

    private static Command List(CommandContext ctx)
    {
        var cmd = new Command("list", "List VMs (reconciled with the running processes)");
        cmd.Aliases.Add("ls");
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var vms = await ctx.Client.ListAsync(ct).ConfigureAwait(false);
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(vms.ToList(), CliJsonContext.Default.ListVmInfo);
                return 0;
            }
            Table.Write(ctx.Console.Out, ["ID", "STATUS", "RUNTIME", "VCPUS", "MEMORY", "DISK", "ACCEL", "PID", "POLICY", "PORTS", "CREATED", "EXPIRES"],
                vms.Select(v => (IReadOnlyList<string>)[
                    v.Id, v.Status, v.Runtime, v.Vcpus.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    $"{v.MemoryMib}M", $"{v.DiskMib}M", v.Accel, v.Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                    NetworkCommands.Summary(v), NetworkCommands.Ports(v), Ago(v.CreatedAt),
                    v.ExpiresAt is { } at ? $"{In(at)} ({v.OnTimeout})" : "-",
                ]));
            return 0;
        }));
        return cmd;
    }

    private static string Ago(DateTimeOffset t)
    {
        var d = DateTimeOffset.UtcNow - t;
        return d.TotalSeconds < 60 ? $"{(int)d.TotalSeconds}s ago" : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes}m ago" : d.TotalHours < 48 ? $"{(int)d.TotalHours}h ago" : $"{(int)d.TotalDays}d ago";
    }

    private static string In(DateTimeOffset t)
    {
        var d = t - DateTimeOffset.UtcNow;
        if (d <= TimeSpan.Zero)
            return "now";
        return d.TotalSeconds < 60 ? $"in {(int)d.TotalSeconds}s" : d.TotalMinutes < 60 ? $"in {(int)d.TotalMinutes}m" : d.TotalHours < 48 ? $"in {(int)d.TotalHours}h" : $"in {(int)d.TotalDays}d";
    }

    /// <summary>`vmsan timeout ID 30m [--on-timeout ACTION]`: the VM's timeout from now; `off` clears it.</summary>
    private static Command Timeout(CommandContext ctx)
    {
        var cmd = new Command("timeout", "Set a VM's timeout from now (e.g. 30m; `off` clears it); list/get show expiresAt");
        var id = IdArg();
        var duration = new Argument<string>("duration") { Description = "How long from now (30s, 10m, 2h, 1d), or off" };
        var action = new Option<string?>("--on-timeout") { Description = "What the timeout does: stop, pause, remove (default: unchanged, else stop)" };
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(duration);
        cmd.Options.Add(action);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var text = p.GetValue(duration)!;
            TimeSpan? span = text is "off" or "none" ? null : Durations.ParseSpan(text, "timeout");
            var vm = await ctx.Client.SetTimeoutAsync(p.GetValue(id)!, span, p.GetValue(action), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(vm, CliJsonContext.Default.VmInfo);
            else
                ctx.Console.Out.WriteLine(vm.ExpiresAt is { } at ? $"{vm.Id} {vm.OnTimeout} at {at:O}" : $"{vm.Id} has no timeout");
            return 0;
        }));
        return cmd;
    }

    private static Command Get(CommandContext ctx)
    {
        var cmd = new Command("get", "Show one VM");
        cmd.Aliases.Add("inspect");
        var id = IdArg();
        cmd.Arguments.Add(id);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var vm = await ctx.Client.GetAsync(p.GetValue(id)!, ct).ConfigureAwait(false);
            ctx.Console.WriteJson(vm, CliJsonContext.Default.VmInfo);
            return 0;
        }));
        return cmd;
    }

    private static Command Start(CommandContext ctx)
    {
        var cmd = new Command("start", "Boot a stopped VM (its disk is kept)");
        var ids = IdsArg();
        cmd.Arguments.Add(ids);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var started = new List<VmInfo>();
            foreach (var id in ValidatedIds(p, ids))
                started.Add(await ctx.Client.StartAsync(id, ct).ConfigureAwait(false));
            if (ctx.Console.Json)
                ctx.Console.WriteJson(started, CliJsonContext.Default.ListVmInfo);
            else
                PrintIds(ctx, started.Select(v => v.Id));
            return 0;
        }));
        return cmd;
    }

    private static Command Stop(CommandContext ctx)
    {
        var cmd = new Command("stop", "Stop VMs gracefully (guest power-off, then quit, then kill)");
        var ids = IdsArg();
        cmd.Arguments.Add(ids);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var all = ValidatedIds(p, ids);
            // Independent VMs stop in parallel: a graceful stop is mostly waiting.
            var stopped = await Task.WhenAll(all.Select(id => ctx.Client.StopAsync(id, ct))).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(new StoppedResult(stopped), CliJsonContext.Default.StoppedResult);
            else
                PrintIds(ctx, stopped.Select(v => v.Id));
            return 0;
        }));
        return cmd;
    }

    private static Command Remove(CommandContext ctx)
    {
        var cmd = new Command("remove", "Remove VMs and everything they own");
        cmd.Aliases.Add("rm");
        var ids = IdsArg();
        var force = new Option<bool>("--force", "-f") { Description = "Kill running VMs first" };
        cmd.Arguments.Add(ids);
        cmd.Options.Add(force);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var all = ValidatedIds(p, ids);
            foreach (var id in all)
                await ctx.Client.RemoveAsync(id, p.GetValue(force), ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(new RemovedResult(all), CliJsonContext.Default.RemovedResult);
            else
                PrintIds(ctx, all);
            return 0;
        }));
        return cmd;
    }

    private static Command Logs(CommandContext ctx)
    {
        var cmd = new Command("logs", "Print the guest's serial console (or, with --network, its network log)");
        var id = IdArg();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new output until the VM stops" };
        var network = new Option<bool>("--network") { Description = "DNS answers and refusals, refused connections: time, name or destination, answer, rule" };
        cmd.Arguments.Add(id);
        cmd.Options.Add(follow);
        cmd.Options.Add(network);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var vmId = p.GetValue(id)!;
            if (p.GetValue(network))
                return await NetworkLogsAsync(ctx, vmId, p.GetValue(follow), ct).ConfigureAwait(false);
            var path = ctx.Client.ConsoleLogPath(vmId);
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(new LogsResult(vmId, File.Exists(path) ? await File.ReadAllTextAsync(path, ct).ConfigureAwait(false) : ""), CliJsonContext.Default.LogsResult);
                return 0;
            }
            if (!File.Exists(path))
                return 0;
            await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            await using var stdout = Console.OpenStandardOutput();
            await fs.CopyToAsync(stdout, ct).ConfigureAwait(false);
            while (p.GetValue(follow))
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
                await fs.CopyToAsync(stdout, ct).ConfigureAwait(false);
                var vm = await ctx.Client.GetAsync(vmId, ct).ConfigureAwait(false);
                if (vm.Status is "stopped" or "error")
                    break;
            }
            return 0;
        }));
        return cmd;
    }

    private static async Task<int> NetworkLogsAsync(CommandContext ctx, string vmId, bool follow, CancellationToken ct)
    {
        var path = ctx.Client.NetworkLogPath(vmId);
        var events = Vmsan.Network.Logging.NetworkLog.Read(path);
        if (ctx.Console.Json)
        {
            ctx.Console.WriteJson(new NetworkLogsResult(vmId, events), CliJsonContext.Default.NetworkLogsResult);
            return 0;
        }
        foreach (var e in events)
            ctx.Console.Out.WriteLine(Vmsan.Network.Logging.NetworkLog.Format(e));
        var seen = events.Count;
        while (follow)
        {
            await Task.Delay(500, ct).ConfigureAwait(false);
            var now = Vmsan.Network.Logging.NetworkLog.Read(path);
            foreach (var e in now.Skip(seen))
                ctx.Console.Out.WriteLine(Vmsan.Network.Logging.NetworkLog.Format(e));
            seen = now.Count;
            var vm = await ctx.Client.GetAsync(vmId, ct).ConfigureAwait(false);
            if (vm.Status is "stopped" or "error")
                break;
        }
        return 0;
    }

    private static Command DoctorCmd(CommandContext ctx)
    {
        var cmd = new Command("doctor", "Check prerequisites (with a fix for each failure) and reconcile state");
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var report = await new Doctor(ctx.Client).RunAsync(ct).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(report, CliJsonContext.Default.DoctorReport);
            else
            {
                foreach (var c in report.Checks)
                {
                    ctx.Console.Out.WriteLine($"{(c.Ok ? "ok  " : "FAIL")}  {c.Name,-20} {c.Detail}");
                    if (!c.Ok && c.Fix is not null)
                        ctx.Console.Out.WriteLine($"      fix: {c.Fix}");
                }
                foreach (var r in report.Repaired)
                    ctx.Console.Out.WriteLine($"fixed {r}");
            }
            return report.Ok ? 0 : 1;
        }));
        return cmd;
    }
}
