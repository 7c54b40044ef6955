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

    private static volatile bool s_hosting;

    /// <summary>Whether this process declared itself a supervisor host (called <see cref="RunIfRequestedAsync"/>).</summary>
    public static bool IsHosting => s_hosting;

    /// <summary>
    /// When <paramref name="args"/> is a supervisor invocation (<c>__supervise VM-ID</c>), runs that VM's supervisor
    /// until its VMM ends and returns the exit code; otherwise returns null at once, and from then on VMs created by
    /// this process are supervised by re-executing it.
    /// </summary>
    /// <param name="args">The program's command-line arguments, as <c>Main</c> got them.</param>
    /// <param name="options">Options for the supervisor's client; null: the defaults (paths from <c>VMSAN_HOME</c>/<c>VMSAN_ASSETS</c>, which the launching client sets).</param>
    public static async Task<int?> RunIfRequestedAsync(string[] args, VmsanClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        s_hosting = true;
        if (args is not [Verb, var id])
            return null;
        using var client = new VmsanClient(options);
        try
        {
            return await new VmSupervisor(client, VmsanClient.RequireId(id)).RunAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (VmsanException e)
        {
            await Console.Error.WriteLineAsync($"error [{e.Code.ToWire()}]: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    /// <summary>The command line that runs <paramref name="id"/>'s supervisor.</summary>
    internal static IReadOnlyList<string> CommandFor(string? executable, string id) =>
        CommandFor(executable, id, s_hosting, Environment.ProcessPath, EntryAssemblyPath);

    /// <summary>The choice itself, apart from the process's state (unit-tested).</summary>
    internal static IReadOnlyList<string> CommandFor(string? executable, string id, bool hosting, string? processPath, Func<string> entryAssembly)
    {
        if (executable is { Length: > 0 })
            return [executable, Verb, id];
        if (hosting && processPath is { } self)
        {
            // Under `dotnet app.dll` the process is the dotnet host: re-run it with the same entry assembly
            // (GetCommandLineArgs()[0] is its path there; under an apphost or NativeAOT it is the executable itself).
            if (Path.GetFileName(self) == "dotnet")
                return [self, entryAssembly(), Verb, id];
            return [self, Verb, id];
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
