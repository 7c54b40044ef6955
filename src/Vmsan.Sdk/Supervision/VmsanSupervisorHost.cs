using System.Diagnostics;
using Vmsan.Core.Errors;
using Vmsan.Supervision;

namespace Vmsan;

/// <summary>
/// Where a VM's supervisor runs. Every VM has a detached supervisor process (its own session) that sets up the
/// network namespace, runs the VMM, and tears everything down when the VMM ends; <see cref="VmsanClient.CreateAsync"/>
/// and <see cref="VmsanClient.StartAsync"/> start it by re-executing a host program with the arguments
/// <c>__supervise VM-ID</c>. Any program using the library can be that host without the <c>vmsan</c> CLI: call
/// <see cref="RunIfRequestedAsync"/> first thing in <c>Main</c>; the library then re-executes the current program
/// (its executable, or <c>dotnet</c> with its entry assembly). <see cref="VmsanClientOptions.SupervisorExecutable"/>
/// (default: the <c>VMSAN_CLI</c> environment variable) names another host instead, e.g. the installed <c>vmsan</c>.
/// </summary>
/// <example>
/// <code>
/// if (await VmsanSupervisorHost.RunIfRequestedAsync(args) is { } exitCode)
///     return exitCode;
/// using var client = new VmsanClient();
/// </code>
/// </example>
public static class VmsanSupervisorHost
{
    /// <summary>The first argument a supervisor invocation carries.</summary>
    public const string Verb = "__supervise";

    /// <summary>
    /// <c>__remove VM-ID</c>: a forced remove in a process of its own, which a supervisor starts when its VM's timeout
    /// says remove (the remove signals that supervisor and waits for it to end, so it cannot run inside it).
    /// </summary>
    internal const string RemoveVerb = "__remove";

    private static volatile bool s_hosting;

    /// <summary>Whether this process declared itself a supervisor host (called <see cref="RunIfRequestedAsync"/>).</summary>
    public static bool IsHosting => s_hosting;

    /// <summary>
    /// When <paramref name="args"/> is a supervisor invocation (<c>__supervise VM-ID</c>), runs that VM's supervisor
    /// until its VMM ends and returns the exit code (likewise <c>__remove VM-ID</c>, which a supervisor starts when its
    /// VM's timeout removes it); otherwise returns null at once, and from then on VMs created by
    /// this process are supervised by re-executing it.
    /// </summary>
    /// <param name="args">The program's command-line arguments, as <c>Main</c> got them.</param>
    /// <param name="options">Options for the supervisor's client; null: the defaults (paths from <c>VMSAN_HOME</c>/<c>VMSAN_ASSETS</c>, which the launching client sets).</param>
    public static async Task<int?> RunIfRequestedAsync(string[] args, VmsanClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        s_hosting = true;
        if (args is [RemoveVerb, var removeId])
            return await RunAsync(options, async vms => { await vms.RemoveAsync(VmLifecycle.RequireId(removeId), true, CancellationToken.None).ConfigureAwait(false); return 0; }).ConfigureAwait(false);
        if (args is not [Verb, var id])
            return null;
        return await RunAsync(options, vms => new VmSupervisor(VmLifecycle.RequireId(id), vms.Store, vms.Network, vms.Options, vms).RunAsync(CancellationToken.None))
            .ConfigureAwait(false);
    }

    private static async Task<int> RunAsync(VmsanClientOptions? options, Func<VmLifecycle, Task<int>> run)
    {
        using var vms = VmLifecycle.For(options ?? new VmsanClientOptions());
        try
        {
            return await run(vms).ConfigureAwait(false);
        }
        catch (VmsanException e)
        {
            await Console.Error.WriteLineAsync($"error [{e.Code.ToWire()}]: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    /// <summary>
    /// Starts <c>HOST VERB ID</c> detached: its own session (it outlives the caller and never gets the terminal's
    /// Ctrl-C), stdin from /dev/null and stdout/stderr appended to <paramref name="log"/> (a caller reading our stdout,
    /// e.g. <c>$(vmsan create)</c>, sees EOF), umask 077 (what it and its VMM create in the VM directory, its log, the
    /// console, the QMP socket, the network log, is theirs alone). Returns once it is detached.
    /// </summary>
    internal static async Task StartDetachedAsync(VmsanClientOptions options, string verb, string id, string log, CancellationToken ct)
    {
        var command = CommandFor(options.SupervisorExecutable, verb, id);
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var a in (string[])["-c", "umask 077; log=$1; shift; exec setsid -f \"$@\" </dev/null >>\"$log\" 2>&1", "sh", log, .. command])
            psi.ArgumentList.Add(a);
        psi.Environment["VMSAN_HOME"] = options.Paths.Home;
        psi.Environment["VMSAN_ASSETS"] = options.Paths.Assets;
        using var p = Process.Start(psi) ?? throw new VmsanException(ErrorCode.Internal, $"Cannot start `{verb} {id}`.");
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The command line that runs <paramref name="id"/>'s supervisor.</summary>
    internal static IReadOnlyList<string> CommandFor(string? executable, string verb, string id) =>
        CommandFor(executable, verb, id, s_hosting, Environment.ProcessPath, EntryAssemblyPath);

    /// <summary>The choice itself, apart from the process's state (unit-tested).</summary>
    internal static IReadOnlyList<string> CommandFor(string? executable, string verb, string id, bool hosting, string? processPath, Func<string> entryAssembly)
    {
        if (executable is { Length: > 0 })
            return [executable, verb, id];
        if (hosting && processPath is { } self)
        {
            // Under `dotnet app.dll` the process is the dotnet host: re-run it with the same entry assembly
            // (GetCommandLineArgs()[0] is its path there; under an apphost or NativeAOT it is the executable itself).
            if (Path.GetFileName(self) == "dotnet")
                return [self, entryAssembly(), verb, id];
            return [self, verb, id];
        }
        throw new VmsanException(ErrorCode.DependencyMissing, "No program to run the VM's supervisor in.",
            "Call `await VmsanSupervisorHost.RunIfRequestedAsync(args)` first in Main, or set VmsanClientOptions.SupervisorExecutable (or VMSAN_CLI) to the installed vmsan.");
    }

    private static string EntryAssemblyPath()
    {
        var first = Environment.GetCommandLineArgs()[0];
        return first.EndsWith(".dll", StringComparison.Ordinal)
            ? Path.GetFullPath(first)
            : Path.Combine(AppContext.BaseDirectory, AppDomain.CurrentDomain.FriendlyName + ".dll");
    }
}
