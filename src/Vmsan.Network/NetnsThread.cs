using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vmsan.Core.Errors;

namespace Vmsan.Network;

/// <summary>
/// Runs a short piece of code with the calling thread moved into a named network namespace.
/// setns(CLONE_NEWNET) moves one thread only, so the work runs on a dedicated thread that is never
/// a pool thread: whatever happens, the thread ends afterwards and no unrelated code ever runs in
/// the wrong namespace. Sockets (and /proc/sys/net files) keep the namespace they were created in.
/// </summary>
internal static class NetnsThread
{
    private const string NetnsDir = "/run/netns";

    public static string PathOf(string netnsName)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsName);
        // A process's namespace (/proc/PID/ns/net) reaches a VM's network from any mount
        // namespace, while /run/netns/NAME is only mounted where `ip netns add` ran.
        if (netnsName.StartsWith("/proc/", StringComparison.Ordinal) && netnsName.EndsWith("/ns/net", StringComparison.Ordinal))
            return netnsName;
        if (netnsName is "." or ".." || netnsName.Contains('/', StringComparison.Ordinal) || netnsName.Contains('\0', StringComparison.Ordinal))
            throw VmsanException.Invalid($"'{netnsName}' is not a network namespace name.");
        return Path.Combine(NetnsDir, netnsName);
    }

    public static bool Exists(string netnsName) => File.Exists(PathOf(netnsName));

    /// <summary>Runs <paramref name="action"/> inside <paramref name="netnsName"/> and returns its result.</summary>
    /// <remarks>
    /// Not cancellable once started: the work is meant to be a few syscalls (socket(), a /proc write),
    /// and abandoning it would leak what it creates.
    /// </remarks>
    public static Task<T> RunAsync<T>(string netnsName, Func<T> action)
    {
        var path = PathOf(netnsName);
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => Run(netnsName, path, action, tcs))
        {
            IsBackground = true,
            Name = "vmsan-netns",
        };
        thread.UnsafeStart();
        return tcs.Task;
    }

    private static void Run<T>(string netnsName, string path, Func<T> action, TaskCompletionSource<T> tcs)
    {
        try
        {
            // Opened before leaving, so the way back cannot depend on the target namespace's /proc view.
            using var home = OpenNs("/proc/thread-self/ns/net", netnsName);
            using var target = OpenNs(path, netnsName);
            if (Libc.Setns(target, Libc.CLONE_NEWNET) != 0)
                throw Errno("setns", netnsName, Marshal.GetLastPInvokeError());
            T result;
            try
            {
                result = action();
            }
            finally
            {
                // If this fails the thread stays in the VM's namespace, which is harmless: it is a
                // dedicated thread and it ends as soon as this method returns.
                _ = Libc.Setns(home, Libc.CLONE_NEWNET);
            }
            // Continuations run asynchronously (on the pool), never on this thread.
            tcs.SetResult(result);
        }
        catch (Exception ex)
        {
            tcs.SetException(ex);
        }
    }

    private static SafeFileHandle OpenNs(string path, string netnsName)
    {
        while (true)
        {
            var fd = Libc.OpenHandle(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            if (!fd.IsInvalid)
                return fd;
            var errno = Marshal.GetLastPInvokeError();
            fd.Dispose();
            if (errno == Libc.EINTR)
                continue;
            throw Errno($"open({path})", netnsName, errno);
        }
    }

    private static VmsanException Errno(string call, string netnsName, int errno) => errno switch
    {
        Libc.ENOENT => new VmsanException(ErrorCode.VmNotRunning,
            $"The network namespace '{netnsName}' does not exist: the VM is not running.",
            "Start the VM with `vmsan start <id>`; `vmsan list` shows which VMs are running."),
        Libc.EPERM => new VmsanException(ErrorCode.PermissionDenied,
            $"{call} for network namespace '{netnsName}' was denied: {Marshal.GetPInvokeErrorMessage(errno)}.",
            "Run vmsan as root (it needs CAP_SYS_ADMIN to enter a VM's network namespace)."),
        _ => new VmsanException(ErrorCode.Internal,
            $"{call} for network namespace '{netnsName}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).",
            "Run `vmsan doctor` to check the host."),
    };
}
