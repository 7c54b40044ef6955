using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using Vmsan.Vmm;
using Vmsan.Vmm.Firecracker;
using YamlDotNet.Serialization;

namespace Vmsan.UnitTests.Vmm;

/// <summary>
/// Every request the Firecracker backend sends, in each lifecycle path, checked against
/// Firecracker's own OpenAPI description (v1.17): a fake API server on a Unix socket validates
/// each body against the schema of its path and method (plus: no property the schema does not
/// declare) and records it. The OpenAPI file is not part of the repository; without it the tests
/// are skipped with that reason (VMSAN_FIRECRACKER_OPENAPI points elsewhere).
/// </summary>
public sealed class FirecrackerContractTests : IAsyncDisposable
{
    /// <summary>A test input, not part of the repository: the path of Firecracker's OpenAPI file (v1.17).</summary>
    private static readonly string? SpecPath = Environment.GetEnvironmentVariable("VMSAN_FIRECRACKER_OPENAPI") is { Length: > 0 } p ? p : null;

    private static void RequireSpec()
    {
        if (SpecPath is null)
            Assert.Skip("VMSAN_FIRECRACKER_OPENAPI is not set (the path of Firecracker's OpenAPI file, firecracker-api.yaml of v1.17; not shipped with vmsan)");
        if (!File.Exists(SpecPath))
            Assert.Skip($"Firecracker's OpenAPI file is not present at {SpecPath} (VMSAN_FIRECRACKER_OPENAPI)");
    }

    private readonly string _dir = Directory.CreateTempSubdirectory("vmsan-fc-").FullName;
    private FakeFirecracker? _server;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private FakeFirecracker Start()
    {
        RequireSpec();
        _server = new FakeFirecracker(Path.Combine(_dir, "api.sock"), OpenApi.Load(SpecPath!));
        return _server;
    }

    private static VmLaunchSpec Spec() => new()
    {
        VmId = "vm-1a2b3c4d",
        Vcpus = 2,
        MemoryMib = 512,
        Kernel = "/a/vmlinux",
        Initrd = "/v/initrd.img",
        KernelArgs = "console=ttyS0 quiet",
        Disk = "/v/rootfs.ext4",
        DiskFormat = "raw",
        ConsoleLog = "/v/console.log",
        ControlSocket = "/v/api.sock",
        Accel = new AccelChoice(AccelKind.Kvm, "test"),
        Tap = "tap0",
        Netns = "vmsan-1a2b3c4d",
    };

    [Fact]
    public async Task The_boot_sequence_sends_only_valid_requests_in_firecrackers_order()
    {
        var fc = Start();
        using var api = new FirecrackerApiClient(fc.Socket);
        await FirecrackerBoot.ConfigureAndStartAsync(api, Spec(), TestContext.Current.CancellationToken);
        Assert.Empty(fc.Violations);
        Assert.Equal(
            ["PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs", "PUT /network-interfaces/eth0", "PUT /actions"],
            fc.Requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal("InstanceStart", JsonNode.Parse(fc.Requests[^1].Body)!["action_type"]!.GetValue<string>());
        Assert.Equal(2, JsonNode.Parse(fc.Requests[2].Body)!["vcpu_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Pause_resume_snapshot_create_and_load_status_and_shutdown_send_only_valid_requests()
    {
        var fc = Start();
        await using var control = new FirecrackerControl(new FirecrackerApiClient(fc.Socket));
        var ct = TestContext.Current.CancellationToken;
        await control.PauseAsync(ct);
        await control.CreateSnapshotAsync("/snap/vm.state", "/snap/vm.mem", ct);
        await control.ResumeAsync(ct);
        Assert.Equal("running", await control.QueryStatusAsync(ct));
        await control.PowerdownAsync(ct);
        await control.LoadSnapshotAsync("/snap/vm.state", "/snap/vm.mem", resume: true, ct);
        Assert.Empty(fc.Violations);
        Assert.Equal(["PATCH /vm", "PUT /snapshot/create", "PATCH /vm", "GET /", "PUT /actions", "PUT /snapshot/load"],
            fc.Requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal("Paused", JsonNode.Parse(fc.Requests[0].Body)!["state"]!.GetValue<string>());
        Assert.Equal("SendCtrlAltDel", JsonNode.Parse(fc.Requests[4].Body)!["action_type"]!.GetValue<string>());
        // MAP_PRIVATE restore: a File memory backend (not the deprecated mem_file_path).
        var load = JsonNode.Parse(fc.Requests[5].Body)!;
        Assert.Equal("File", load["mem_backend"]!["backend_type"]!.GetValue<string>());
        Assert.Null(load["mem_file_path"]);
    }

    /// <summary>
    /// The backend's whole launch path: a stand-in jailer (a script that records its argv, writes
    /// the pid file the real one writes and leaves a process running as "Firecracker") and the fake
    /// API server at the socket path inside the jail; every request validated.
    /// </summary>
    [Fact]
    public async Task The_backend_launches_through_the_jailer_and_boots_over_valid_requests()
    {
        RequireSpec();
        if (!Vmsan.Core.Interop.LibcPublic.IsRoot())
            Assert.Skip("needs root (the jail's files are chowned to the VM's uid)");
        var ct = TestContext.Current.CancellationToken;
        var vmDir = Directory.CreateDirectory(Path.Combine(_dir, "vm")).FullName;
        foreach (var f in (string[])["vmlinux", "initrd.img", "disk.raw", "console.log"])
            await File.WriteAllTextAsync(Path.Combine(vmDir, f), f, ct);
        var firecracker = Path.Combine(_dir, "firecracker");
        await File.WriteAllTextAsync(firecracker, "#!/bin/sh\nexit 1\n", ct);
        var jailer = Path.Combine(_dir, "jailer");
        var argvFile = Path.Combine(_dir, "jailer.argv");
        await File.WriteAllTextAsync(jailer, $$"""
            #!/bin/bash
            printf '%s\n' "$@" > {{argvFile}}
            while [[ $# -gt 0 ]]; do
              case $1 in --id) id=$2; shift ;; --exec-file) exe=$2; shift ;; --chroot-base-dir) base=$2; shift ;; --) break ;; esac
              shift
            done
            root=$base/$(basename "$exe")/$id/root
            echo "jailer: console line" 
            sleep 60 </dev/null >/dev/null 2>&1 &
            echo -n $! > "$root/$(basename "$exe").pid"
            exit 0
            """, ct);
        File.SetUnixFileMode(jailer, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(firecracker, (UnixFileMode)0b111_101_101);
        var limits = Vmsan.Vmm.Cgroups.CgroupLimits.For(2, 512, 64);
        var spec = Spec() with
        {
            Kernel = Path.Combine(vmDir, "vmlinux"),
            Initrd = Path.Combine(vmDir, "initrd.img"),
            Disk = Path.Combine(vmDir, "disk.raw"),
            ConsoleLog = Path.Combine(vmDir, "console.log"),
            ControlSocket = Path.Combine(vmDir, "qmp.sock"),
            Confinement = new VmmConfinementSpec
            {
                Uid = 1_900_000_042,
                Gid = 4242,
                Seccomp = true,
                Jail = Path.Combine(vmDir, "jail"),
                Limits = limits,
                CgroupVersion = 1,
                CgroupParent = "vmsan",
            },
        };
        var backend = new FirecrackerBackend(firecracker, jailer);
        Assert.Null(backend.CheckAvailable());
        var root = FirecrackerBackend.JailRoot(spec.Confinement.Jail!, firecracker, spec.VmId);
        var launch = backend.LaunchAsync(spec, ct);
        // The real Firecracker opens its API socket once the jailer has exec'd it: stand in for it.
        while (!File.Exists(Path.Combine(root, "firecracker.pid")) && !launch.IsCompleted)
            await Task.Delay(5, ct);
        _server = new FakeFirecracker(Path.Combine(root, "run", "firecracker.socket"), OpenApi.Load(SpecPath!));
        var vmm = await launch;
        try
        {
            Assert.Empty(_server.Violations);
            Assert.Equal(
                ["PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs", "PUT /network-interfaces/eth0", "PUT /actions"],
                _server.Requests.Select(r => $"{r.Method} {r.Path}"));
            var argv = await File.ReadAllLinesAsync(argvFile, ct);
            string After(string flag) => argv[Array.IndexOf(argv, flag) + 1];
            Assert.Equal("1900000042", After("--uid"));
            Assert.Equal("4242", After("--gid"));
            Assert.Equal(spec.Confinement.Jail, After("--chroot-base-dir"));
            Assert.Equal("/run/netns/vmsan-1a2b3c4d", After("--netns"));
            Assert.Equal("vmsan", After("--parent-cgroup"));
            Assert.Contains("--new-pid-ns", argv);
            Assert.Contains($"memory.limit_in_bytes={limits.MemoryMaxBytes}", argv);
            Assert.DoesNotContain("--no-seccomp", argv);
            // The boot files are the VM's own inodes (guest disk writes land in disk.raw), owned by its uid.
            Assert.Equal(Inode(spec.Disk), Inode(Path.Combine(root, "rootfs.ext4")));
            Assert.Equal(1_900_000_042, Owner(Path.Combine(root, "rootfs.ext4")));
            Assert.Equal(1_900_000_042, Owner(Path.Combine(root, "run")));
            // Firecracker's logger and metrics take existing files.
            Assert.Equal(1_900_000_042, Owner(Path.Combine(root, "firecracker.log")));
            Assert.Equal(1_900_000_042, Owner(Path.Combine(root, "firecracker.metrics")));
            // The console log got the jailer's output; every later command finds the API by the usual path.
            Assert.Contains("jailer: console line", await File.ReadAllTextAsync(spec.ConsoleLog, ct));
            await using (var control = await backend.ConnectAsync(spec.ControlSocket, ct))
                Assert.Equal("running", await control.QueryStatusAsync(ct));
            Assert.False(vmm.Exited.IsCompleted);
        }
        finally
        {
            System.Diagnostics.Process.GetProcessById(vmm.Pid).Kill();
        }
        Assert.Equal(-1, await vmm.Exited.WaitAsync(TimeSpan.FromSeconds(10), ct));
    }

    /// <summary>
    /// <c>snapshot create</c> on a Firecracker VM: pause, a Full snapshot into the jail's /snapshot (a directory the VM's
    /// uid owns, since Firecracker writes it as that uid), the disk copied while the vCPUs are still stopped, resume.
    /// </summary>
    [Fact]
    public async Task Snapshot_create_pauses_writes_a_full_snapshot_in_the_jail_copies_the_disk_while_paused_and_resumes()
    {
        RequireRoot();
        var fc = Start();
        var ct = TestContext.Current.CancellationToken;
        var jailRoot = Directory.CreateDirectory(Path.Combine(_dir, "root")).FullName;
        await using var control = new FirecrackerControl(new FirecrackerApiClient(fc.Socket));
        var requestsAtCopy = -1;
        var (state, memory, _) = await FirecrackerSnapshot.CreateAsync(control, jailRoot, 1_900_000_042, 4242, _ =>
        {
            lock (fc.Requests)
                requestsAtCopy = fc.Requests.Count;
            return Task.CompletedTask;
        }, ct);
        Assert.Empty(fc.Violations);
        Assert.Equal(["PATCH /vm", "PUT /snapshot/create", "PATCH /vm"], fc.Requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal(2, requestsAtCopy); // after snapshot/create, before the resume
        Assert.Equal("Paused", JsonNode.Parse(fc.Requests[0].Body)!["state"]!.GetValue<string>());
        var create = JsonNode.Parse(fc.Requests[1].Body)!;
        Assert.Equal("Full", create["snapshot_type"]!.GetValue<string>());
        Assert.Equal(FirecrackerSnapshot.StateFile, create["snapshot_path"]!.GetValue<string>());
        Assert.Equal(FirecrackerSnapshot.MemoryFile, create["mem_file_path"]!.GetValue<string>());
        Assert.Equal("Resumed", JsonNode.Parse(fc.Requests[2].Body)!["state"]!.GetValue<string>());
        Assert.Equal(Path.Combine(jailRoot, "snapshot", "vmstate"), state);
        Assert.Equal(Path.Combine(jailRoot, "snapshot", "memory"), memory);
        Assert.Equal(1_900_000_042, Owner(Path.Combine(jailRoot, "snapshot")));
        Assert.Equal("700", Stat(Path.Combine(jailRoot, "snapshot"), "%a"));
    }

    [Fact]
    public async Task A_failed_disk_copy_still_resumes_the_source()
    {
        RequireRoot();
        var fc = Start();
        var ct = TestContext.Current.CancellationToken;
        var jailRoot = Directory.CreateDirectory(Path.Combine(_dir, "root")).FullName;
        await using var control = new FirecrackerControl(new FirecrackerApiClient(fc.Socket));
        await Assert.ThrowsAsync<IOException>(() => FirecrackerSnapshot.CreateAsync(control, jailRoot, 1_900_000_042, 4242, _ => throw new IOException("disk full"), ct));
        Assert.Empty(fc.Violations);
        Assert.Equal(["PATCH /vm", "PUT /snapshot/create", "PATCH /vm"], fc.Requests.Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal("Resumed", JsonNode.Parse(fc.Requests[^1].Body)!["state"]!.GetValue<string>());
    }

    /// <summary>
    /// <c>create --snapshot</c> of a Firecracker snapshot: the clone's jailer-started Firecracker gets the snapshot's
    /// state and memory hard-linked into its jail (the same inodes: clones share the memory file's pages), only its
    /// logger and metrics configured, then <c>PUT /snapshot/load</c> with a MAP_PRIVATE <c>File</c> backend, left paused
    /// for the supervisor, which resumes it (<c>PATCH /vm</c>) before the re-key.
    /// </summary>
    [Fact]
    public async Task A_clone_launches_through_the_jailer_and_loads_the_snapshot_over_valid_requests()
    {
        RequireSpec();
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        var snapDir = Directory.CreateDirectory(Path.Combine(_dir, "snap")).FullName;
        foreach (var f in (string[])["state", "memory"])
            await File.WriteAllTextAsync(Path.Combine(snapDir, f), f, ct);
        var (backend, spec, root, argvFile) = await StandInJailerAsync(ct);
        spec = spec with { Incoming = true, StateFile = Path.Combine(snapDir, "state"), MemoryFile = Path.Combine(snapDir, "memory"), MemoryShared = false };
        var launch = backend.LaunchAsync(spec, ct);
        while (!File.Exists(Path.Combine(root, "firecracker.pid")) && !launch.IsCompleted)
            await Task.Delay(5, ct);
        _server = new FakeFirecracker(Path.Combine(root, "run", "firecracker.socket"), OpenApi.Load(SpecPath!));
        var vmm = await launch;
        try
        {
            Assert.Empty(_server.Violations);
            Assert.Equal(["PUT /logger", "PUT /metrics", "PUT /snapshot/load"], _server.Requests.Select(r => $"{r.Method} {r.Path}"));
            var load = JsonNode.Parse(_server.Requests[2].Body)!;
            Assert.Equal(FirecrackerSnapshot.StateFile, load["snapshot_path"]!.GetValue<string>());
            Assert.Equal("File", load["mem_backend"]!["backend_type"]!.GetValue<string>());
            Assert.Equal(FirecrackerSnapshot.MemoryFile, load["mem_backend"]!["backend_path"]!.GetValue<string>());
            Assert.False(load["resume_vm"]!.GetValue<bool>());
            Assert.Null(load["mem_file_path"]);
            Assert.Equal(Inode(spec.StateFile), Inode(Path.Combine(root, "snapshot", "vmstate")));
            Assert.Equal(Inode(spec.MemoryFile), Inode(Path.Combine(root, "snapshot", "memory")));
            // The clone's own disk, as at boot: its inode, its uid.
            Assert.Equal(Inode(spec.Disk), Inode(Path.Combine(root, "rootfs.ext4")));
            Assert.Equal(1_900_000_042, Owner(Path.Combine(root, "rootfs.ext4")));
            Assert.Contains("--new-pid-ns", await File.ReadAllLinesAsync(argvFile, ct));
            await using (var control = await backend.ConnectAsync(spec.ControlSocket, ct))
                await control.ResumeAsync(ct);
            Assert.Empty(_server.Violations);
            Assert.Equal("PATCH /vm", $"{_server.Requests[^1].Method} {_server.Requests[^1].Path}");
            Assert.Equal("Resumed", JsonNode.Parse(_server.Requests[^1].Body)!["state"]!.GetValue<string>());
        }
        finally
        {
            System.Diagnostics.Process.GetProcessById(vmm.Pid).Kill();
        }
    }

    [Fact]
    public void The_installed_firecracker_version_is_named_as_the_api_names_it()
    {
        Assert.Equal("firecracker 1.17.0", FirecrackerSnapshot.ParseVersion("Firecracker v1.17.0\n\n"));
        Assert.Null(FirecrackerSnapshot.ParseVersion("QEMU emulator version 7.2.22"));
        Assert.Null(FirecrackerSnapshot.ParseVersion(""));
    }

    private static void RequireRoot()
    {
        if (!Vmsan.Core.Interop.LibcPublic.IsRoot())
            Assert.Skip("needs root (the jail's files are chowned to the VM's uid)");
    }

    /// <summary>
    /// A stand-in jailer (a script that records its argv, writes the pid file the real one writes and leaves a process
    /// running as "Firecracker") and a VM directory with its boot files; the caller serves the API in the jail.
    /// </summary>
    private async Task<(FirecrackerBackend Backend, VmLaunchSpec Spec, string Root, string ArgvFile)> StandInJailerAsync(CancellationToken ct)
    {
        var vmDir = Directory.CreateDirectory(Path.Combine(_dir, "vm")).FullName;
        foreach (var f in (string[])["vmlinux", "initrd.img", "disk.raw", "console.log"])
            await File.WriteAllTextAsync(Path.Combine(vmDir, f), f, ct);
        var firecracker = Path.Combine(_dir, "firecracker");
        await File.WriteAllTextAsync(firecracker, "#!/bin/sh\nexit 1\n", ct);
        var jailer = Path.Combine(_dir, "jailer");
        var argvFile = Path.Combine(_dir, "jailer.argv");
        await File.WriteAllTextAsync(jailer, $$"""
            #!/bin/bash
            printf '%s\n' "$@" > {{argvFile}}
            while [[ $# -gt 0 ]]; do
              case $1 in --id) id=$2; shift ;; --exec-file) exe=$2; shift ;; --chroot-base-dir) base=$2; shift ;; --) break ;; esac
              shift
            done
            root=$base/$(basename "$exe")/$id/root
            echo "jailer: console line"
            sleep 60 </dev/null >/dev/null 2>&1 &
            echo -n $! > "$root/$(basename "$exe").pid"
            exit 0
            """, ct);
        File.SetUnixFileMode(jailer, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(firecracker, (UnixFileMode)0b111_101_101);
        var spec = Spec() with
        {
            Kernel = Path.Combine(vmDir, "vmlinux"),
            Initrd = Path.Combine(vmDir, "initrd.img"),
            Disk = Path.Combine(vmDir, "disk.raw"),
            ConsoleLog = Path.Combine(vmDir, "console.log"),
            ControlSocket = Path.Combine(vmDir, "qmp.sock"),
            Confinement = new VmmConfinementSpec
            {
                Uid = 1_900_000_042,
                Gid = 4242,
                Seccomp = true,
                Jail = Path.Combine(vmDir, "jail"),
                Limits = Vmsan.Vmm.Cgroups.CgroupLimits.For(2, 512, 64),
                CgroupVersion = 1,
                CgroupParent = "vmsan",
            },
        };
        var backend = new FirecrackerBackend(firecracker, jailer);
        return (backend, spec, FirecrackerBackend.JailRoot(spec.Confinement.Jail!, firecracker, spec.VmId), argvFile);
    }

    [Fact]
    public async Task The_backend_refuses_to_run_firecracker_as_root_or_unchrooted_before_starting_anything()
    {
        var ct = TestContext.Current.CancellationToken;
        var fake = Path.Combine(_dir, "fake");
        await File.WriteAllTextAsync(fake, "#!/bin/sh\ntouch " + Path.Combine(_dir, "ran") + "\n", ct);
        File.SetUnixFileMode(fake, (UnixFileMode)0b111_101_101);
        var backend = new FirecrackerBackend(fake, fake);
        var root = await Assert.ThrowsAsync<Vmsan.Core.Errors.VmsanException>(() => backend.LaunchAsync(Spec() with { Confinement = new() { Jail = _dir } }, ct));
        Assert.Equal(Vmsan.Core.Errors.ErrorCode.InvalidArgument, root.Code);
        var unjailed = await Assert.ThrowsAsync<Vmsan.Core.Errors.VmsanException>(() => backend.LaunchAsync(Spec() with { Confinement = new() { Uid = 1_900_000_001, Gid = 1 } }, ct));
        Assert.Contains("chroot", unjailed.Message);
        var qcow = await Assert.ThrowsAsync<Vmsan.Core.Errors.VmsanException>(() =>
            backend.LaunchAsync(Spec() with { DiskFormat = "qcow2", Confinement = new() { Uid = 1_900_000_001, Gid = 1, Jail = _dir } }, ct));
        Assert.Contains("raw", qcow.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "ran")));
        var missing = new FirecrackerBackend(Path.Combine(_dir, "no-firecracker"), Path.Combine(_dir, "no-jailer"));
        Assert.Contains("no-jailer", missing.CheckAvailable());
        var dep = await Assert.ThrowsAsync<Vmsan.Core.Errors.VmsanException>(() => missing.LaunchAsync(Spec(), ct));
        Assert.Equal(Vmsan.Core.Errors.ErrorCode.DependencyMissing, dep.Code);
    }

    private static ulong Inode(string path) => ulong.Parse(Stat(path, "%i"), CultureInfo.InvariantCulture);

    private static int Owner(string path) => int.Parse(Stat(path, "%u"), CultureInfo.InvariantCulture);

    private static string Stat(string path, string format)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", format, path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return text;
    }

    [Fact]
    public async Task The_fake_server_rejects_what_firecracker_would_reject()
    {
        var fc = Start();
        using var api = new FirecrackerApiClient(fc.Socket);
        var ct = TestContext.Current.CancellationToken;
        var ex = await Assert.ThrowsAsync<Vmsan.Core.Errors.VmsanException>(() => api.PutMachineConfigAsync(new FcMachineConfig(0, 512), ct));
        Assert.Contains("machine-config", ex.Message);
        Assert.Single(fc.Violations);
        // An undeclared property is a violation too (the schemas do not forbid them; we do).
        Assert.NotEmpty(OpenApi.Load(SpecPath!).Validate("PUT", "/vm/config", "{}").Concat(OpenApi.Load(SpecPath!).Validate("PATCH", "/vm", """{"state":"Paused","bogus":1}""")));
    }

    /// <summary>The request schemas of a Swagger 2.0 file: path template + method → body schema.</summary>
    private sealed class OpenApi
    {
        private readonly JsonObject _doc;

        private OpenApi(JsonObject doc) => _doc = doc;

        public static OpenApi Load(string path)
        {
            var yaml = new DeserializerBuilder().Build().Deserialize<object>(File.ReadAllText(path));
            return new OpenApi((JsonObject)ToJson(yaml)!);
        }

        private static JsonNode? ToJson(object? o) => o switch
        {
            null => null,
            IDictionary<object, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key.ToString()!, ToJson(kv.Value)))),
            IList<object> list => new JsonArray(list.Select(ToJson).ToArray()),
            string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => JsonValue.Create(l),
            string s when s is "true" or "false" => JsonValue.Create(s == "true"),
            string s => JsonValue.Create(s),
            _ => JsonValue.Create(o.ToString()),
        };

        /// <summary>Problems with this request; empty when Firecracker's schema accepts it.</summary>
        public List<string> Validate(string method, string path, string body)
        {
            var paths = _doc["paths"]!.AsObject();
            var match = paths.FirstOrDefault(p => Regex.IsMatch(path, "^" + Regex.Replace(Regex.Escape(p.Key), @"\\\{[^}]+\}", "[^/]+") + "$"));
            if (match.Value is null)
                return [$"{method} {path}: no such path in the API"];
            var op = match.Value[method.ToLowerInvariant()];
            if (op is null)
                return [$"{method} {path}: method not in the API"];
            var bodySchema = op["parameters"]?.AsArray().FirstOrDefault(p => p?["in"]?.GetValue<string>() == "body")?["schema"];
            if (bodySchema is null)
                return body.Length == 0 ? [] : [$"{method} {path}: the API takes no body"];
            var schemaDoc = new JsonObject
            {
                ["$schema"] = "http://json-schema.org/draft-07/schema#",
                ["definitions"] = _doc["definitions"]!.DeepClone(),
            };
            foreach (var kv in bodySchema.AsObject())
                schemaDoc[kv.Key] = kv.Value?.DeepClone();
            var schema = JsonSchema.FromText(schemaDoc.ToJsonString());
            JsonNode? instance;
            try
            {
                instance = JsonNode.Parse(body);
            }
            catch (JsonException e)
            {
                return [$"{method} {path}: body is not JSON ({e.Message})"];
            }
            var result = schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
            var problems = new List<string>();
            if (!result.IsValid)
                problems.AddRange((result.Details ?? []).Where(d => d.HasErrors).SelectMany(d => d.Errors!.Select(e => $"{method} {path} {d.InstanceLocation}: {e.Value}")));
            if (!result.IsValid && problems.Count == 0)
                problems.Add($"{method} {path}: invalid");
            // Undeclared top-level properties: a typo'd field would be silently ignored otherwise.
            var reference = bodySchema["$ref"]?.GetValue<string>();
            var declared = reference is null ? bodySchema["properties"] : _doc["definitions"]![reference.Split('/')[^1]]!["properties"];
            if (instance is JsonObject obj && declared is JsonObject props)
                problems.AddRange(obj.Select(kv => kv.Key).Where(k => !props.ContainsKey(k)).Select(k => $"{method} {path}: undeclared property '{k}'"));
            return problems;
        }
    }

    private sealed record Recorded(string Method, string Path, string Body);

    /// <summary>A Firecracker API stand-in: HTTP/1.1 on a Unix socket, validating and recording every request.</summary>
    private sealed class FakeFirecracker : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly OpenApi _api;
        private readonly CancellationTokenSource _cts = new();
        private readonly Task _loop;

        public FakeFirecracker(string socket, OpenApi api)
        {
            Socket = socket;
            _api = api;
            _listener.Bind(new UnixDomainSocketEndPoint(socket));
            _listener.Listen(8);
            _loop = AcceptLoopAsync();
        }

        public string Socket { get; }

        public List<Recorded> Requests { get; } = [];

        public List<string> Violations { get; } = [];

        private async Task AcceptLoopAsync()
        {
            try
            {
                while (true)
                {
                    var s = await _listener.AcceptAsync(_cts.Token);
                    _ = ServeAsync(s);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task ServeAsync(Socket s)
        {
            using var stream = new NetworkStream(s, ownsSocket: true);
            var buf = new List<byte>();
            var chunk = new byte[4096];
            try
            {
                while (true)
                {
                    int headerEnd;
                    while ((headerEnd = IndexOf(buf, "\r\n\r\n"u8)) < 0)
                    {
                        var n = await stream.ReadAsync(chunk, _cts.Token);
                        if (n == 0)
                            return;
                        buf.AddRange(chunk.AsSpan(0, n).ToArray());
                    }
                    var head = Encoding.ASCII.GetString(buf.GetRange(0, headerEnd).ToArray()).Split("\r\n");
                    var parts = head[0].Split(' ');
                    var length = head.Skip(1).Select(h => h.Split(':', 2)).Where(h => h[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                        .Select(h => int.Parse(h[1].Trim(), CultureInfo.InvariantCulture)).FirstOrDefault();
                    while (buf.Count < headerEnd + 4 + length)
                    {
                        var n = await stream.ReadAsync(chunk, _cts.Token);
                        if (n == 0)
                            return;
                        buf.AddRange(chunk.AsSpan(0, n).ToArray());
                    }
                    var body = Encoding.UTF8.GetString(buf.GetRange(headerEnd + 4, length).ToArray());
                    buf.RemoveRange(0, headerEnd + 4 + length);
                    var problems = _api.Validate(parts[0], parts[1], body);
                    lock (Requests)
                    {
                        Requests.Add(new Recorded(parts[0], parts[1], body));
                        Violations.AddRange(problems);
                    }
                    string response;
                    if (problems.Count > 0)
                    {
                        var fault = JsonSerializer.Serialize(string.Join("; ", problems), FakeJson.Default.String);
                        var json = $"{{\"fault_message\":{fault}}}";
                        response = $"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}";
                    }
                    else if (parts[0] == "GET")
                    {
                        const string json = """{"id":"vm-1a2b3c4d","state":"Running","vmm_version":"1.17.0","app_name":"Firecracker"}""";
                        response = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {json.Length}\r\n\r\n{json}";
                    }
                    else
                    {
                        response = "HTTP/1.1 204 No Content\r\n\r\n";
                    }
                    await stream.WriteAsync(Encoding.UTF8.GetBytes(response), _cts.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
            }
        }

        private static int IndexOf(List<byte> buf, ReadOnlySpan<byte> needle)
        {
            for (var i = 0; i + needle.Length <= buf.Count; i++)
            {
                var ok = true;
                for (var j = 0; j < needle.Length && ok; j++)
                    ok = buf[i + j] == needle[j];
                if (ok)
                    return i;
            }
            return -1;
        }

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            _listener.Dispose();
            await _loop;
            _cts.Dispose();
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class FakeJson : System.Text.Json.Serialization.JsonSerializerContext;
