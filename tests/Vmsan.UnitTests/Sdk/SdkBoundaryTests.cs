using CsCheck;
using Vmsan.Agent.Client;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.Lifecycle;
using Wire = Vmsan.Agent.Protocol;

namespace Vmsan.UnitTests.Sdk;

/// <summary>The SDK's own types carry everything to and from the agent's wire types, and one agent client serves each VM.</summary>
public class SdkBoundaryTests
{
    private static readonly Gen<string> Word = Gen.String[Gen.Char["abcdefghij-_/. "], 0, 12];

    [Fact]
    public void An_exec_request_reaches_the_wire_with_every_field()
    {
        Gen.Select(Word.Array[1, 5], Gen.Dictionary(Word, Word)[0, 3].Null(), Word.Null(), Word.Null(), Gen.Long[0, 1_000_000],
                Gen.Bool, Gen.Bool, Gen.Select(Gen.Int[0, 500], Gen.Int[0, 500], Gen.Bool, Word.Null()))
            .Sample((cmd, env, cwd, user, timeout, stdin, tty, rest) =>
            {
                var (cols, rows, detach, session) = rest;
                var request = new ExecRequest(cmd, env, cwd, user, timeout, stdin, tty, cols, rows, detach, session);

                var wire = request.ToWire();

                Assert.Equal(new Wire.ExecRequest(cmd, env, cwd, user, timeout, stdin, tty, cols, rows, detach, session), wire);
            });
    }

    [Fact]
    public void An_exec_listed_by_the_agent_keeps_every_field()
    {
        Gen.Select(Word, Gen.Int[1, 100_000], Word.Array[0, 4], Gen.Int[-1, 255].Nullable(), Gen.Int[1, 64].Nullable(), Gen.Bool, Word.Null(), Gen.Int[0, 9])
            .Sample((id, pid, cmd, exit, signal, tty, session, viewers) =>
            {
                var at = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + pid);
                var info = ExecInfo.From(new Wire.ExecInfo(id, pid, cmd, "exited", exit, signal, at, tty, !tty, session, "user", viewers));

                Assert.Equal(new ExecInfo(id, pid, cmd, "exited", exit, signal, at, tty, !tty, session, "user", viewers), info);
            });
    }

    private static VmRecord Record(string id, int pid, long start) => new()
    {
        Id = id,
        Status = VmStatus.Running,
        CreatedAt = DateTimeOffset.UnixEpoch,
        Vcpus = 1,
        MemoryMib = 256,
        DiskMib = 4096,
        Runtime = "base",
        Kernel = "/k",
        Initrd = "/i",
        BaseImage = "/b",
        Accel = "tcg",
        Vmm = new ProcessRef(pid, start),
        Network = new VmNetwork { Slot = 0, Netns = "vmsan-00000000", HostVeth = "vsn-0", HostIp = "10.231.0.1", NsIp = "10.231.0.2", GuestIp = "172.30.0.2", GatewayIp = "172.30.0.1" },
    };

    [Fact]
    public async Task One_agent_client_serves_a_vm_until_its_vmm_changes_and_then_the_old_one_is_closed()
    {
        using var connections = new AgentConnections();
        var first = connections.Get(Record("vm-00000001", 4242, 100), "token");

        Assert.Same(first, connections.Get(Record("vm-00000001", 4242, 100), "token"));
        Assert.NotSame(first, connections.Get(Record("vm-00000002", 4242, 100), "token"));

        // Same pid, new process (stop/start): a new client, and the old one is disposed.
        var second = connections.Get(Record("vm-00000001", 4242, 200), "token");
        Assert.NotSame(first, second);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => first.HealthAsync(TestContext.Current.CancellationToken));
        // A new token (a clone's rekey) is a new client too.
        Assert.NotSame(second, connections.Get(Record("vm-00000001", 4242, 200), "token2"));
    }

    [Fact]
    public void Disposed_connections_hand_out_nothing()
    {
        var connections = new AgentConnections();
        var client = connections.Get(Record("vm-00000001", 1, 1), "t");
        connections.Dispose();

        Assert.Throws<ObjectDisposedException>(() => connections.Get(Record("vm-00000001", 1, 1), "t"));
        _ = client;
    }

    [Fact]
    public void The_supervisor_runs_in_the_named_program_else_in_this_program_when_it_hosts_supervisors()
    {
        Assert.Equal(["/opt/vmsan", "__supervise", "vm-00000001"],
            VmsanSupervisorHost.CommandFor("/opt/vmsan", VmsanSupervisorHost.Verb, "vm-00000001", hosting: true, "/usr/bin/app", () => "/app.dll"));
        Assert.Equal(["/usr/bin/app", "__supervise", "vm-00000001"],
            VmsanSupervisorHost.CommandFor(null, VmsanSupervisorHost.Verb, "vm-00000001", hosting: true, "/usr/bin/app", () => "/app.dll"));
        Assert.Equal(["/usr/share/dotnet/dotnet", "/srv/app/App.dll", "__supervise", "vm-00000001"],
            VmsanSupervisorHost.CommandFor("", VmsanSupervisorHost.Verb, "vm-00000001", hosting: true, "/usr/share/dotnet/dotnet", () => "/srv/app/App.dll"));
    }

    [Fact]
    public void A_timeouts_remove_runs_in_the_supervisor_host_too_not_in_a_vmsan_cli()
    {
        // Run inside the supervisor (which this program hosts), the remove is this program again with the remove verb.
        Assert.Equal(["/usr/share/dotnet/dotnet", "/srv/app/App.dll", "__remove", "vm-00000001"],
            VmsanSupervisorHost.CommandFor(null, VmsanSupervisorHost.RemoveVerb, "vm-00000001", hosting: true, "/usr/share/dotnet/dotnet", () => "/srv/app/App.dll"));
    }

    [Fact]
    public void The_client_is_a_facade_over_the_lifecycle_and_the_supervisor_gets_its_parts_not_the_client()
    {
        const System.Reflection.BindingFlags all = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        var fields = typeof(VmsanClient).GetFields(all);
        Assert.Equal([typeof(VmLifecycle)], fields.Select(f => f.FieldType));

        var supervisorParts = typeof(Supervision.VmSupervisor).GetConstructors().Single().GetParameters().Select(p => p.ParameterType).ToList();
        Assert.DoesNotContain(typeof(VmsanClient), supervisorParts);
        Assert.DoesNotContain(typeof(VmLifecycle), supervisorParts);
        Assert.Contains(typeof(Supervision.IVmTransitions), supervisorParts);
        Assert.DoesNotContain(typeof(Supervision.VmSupervisor).GetFields(all), f => f.FieldType == typeof(VmsanClient) || f.FieldType == typeof(VmLifecycle));
    }

    [Fact]
    public void Without_a_supervisor_host_creating_a_vm_is_DEPENDENCY_MISSING_with_the_fix()
    {
        var e = Assert.Throws<VmsanException>(() =>
            VmsanSupervisorHost.CommandFor(null, VmsanSupervisorHost.Verb, "vm-00000001", hosting: false, "/usr/bin/app", () => "/app.dll"));

        Assert.Equal(ErrorCode.DependencyMissing, e.Code);
        Assert.Contains("RunIfRequestedAsync", e.Fix ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_program_that_hosts_supervisors_goes_on_normally_when_not_asked_to_supervise()
    {
        Assert.Null(await VmsanSupervisorHost.RunIfRequestedAsync(["create", "--json"]));
        Assert.True(VmsanSupervisorHost.IsHosting);
    }
}
