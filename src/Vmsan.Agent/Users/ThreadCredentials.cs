namespace Vmsan.Agent.Users;

/// <summary>
/// Runs a posix_spawn as another user without fork or a helper exec. Linux credentials belong to each thread
/// (task); glibc's setuid family broadcasts a change to every thread, but the raw system calls change only the
/// caller, and clone() (posix_spawn's CLONE_VM|CLONE_VFORK child) copies the calling thread's credentials. So the
/// spawning thread sets groups, then real+effective gid/uid while keeping the saved uid/gid 0 (so it can switch
/// back), spawns, and switches back. execve then sets the child's saved ids to its effective ids and, with no
/// uid 0 left, clears its capabilities: the child has no way back to root. Cost: three system calls each way.
/// </summary>
internal static unsafe class ThreadCredentials
{
    private static readonly uint[] AgentGroups = ReadAgentGroups();

    public static bool IsRoot { get; } = Libc.GetEuid() == 0;

    /// <summary>
    /// Runs <paramref name="spawn"/> on this thread with <paramref name="account"/>'s credentials. Returns its
    /// result, or a negative errno when the switch itself failed (EPERM when the agent is not root).
    /// </summary>
    public static int Run(UserAccount account, Func<int> spawn)
    {
        var euid = Libc.GetEuid();
        if (account.Uid == euid && (account.Uid != 0 || account.Gid == 0))
        {
            return spawn();
        }

        if (!IsRoot)
        {
            return -Libc.EPERM;
        }

        var groups = account.Groups.ToArray();
        fixed (uint* g = groups)
        {
            if (Libc.Syscall(Libc.SysSetgroups, groups.Length, (long)g, 0) == -1)
            {
                var errno = Libc.LastErrno;
                Restore();
                return -errno;
            }
        }

        if (Libc.Syscall(Libc.SysSetresgid, account.Gid, account.Gid, 0) == -1
            || Libc.Syscall(Libc.SysSetresuid, account.Uid, account.Uid, 0) == -1)
        {
            var errno = Libc.LastErrno;
            Restore();
            return -errno;
        }

        try
        {
            return spawn();
        }
        finally
        {
            Restore();
        }
    }

    private static void Restore()
    {
        // Order matters: uid first (regains the capabilities needed for the gid and group calls).
        var ok = Libc.Syscall(Libc.SysSetresuid, 0, 0, 0) != -1
            && Libc.Syscall(Libc.SysSetresgid, 0, 0, 0) != -1;
        fixed (uint* g = AgentGroups)
        {
            ok = ok && Libc.Syscall(Libc.SysSetgroups, AgentGroups.Length, (long)g, 0) != -1;
        }

        if (!ok)
        {
            // A pool thread left with another user's credentials would run later work as that user.
            Environment.FailFast($"vmsan-agent: could not restore thread credentials: {Libc.StrError(Libc.LastErrno)}");
        }
    }

    private static uint[] ReadAgentGroups()
    {
        var n = Libc.GetGroups(0, null);
        if (n <= 0)
        {
            return [];
        }

        var groups = new uint[n];
        fixed (uint* g = groups)
        {
            n = Libc.GetGroups(n, g);
        }

        return n < 0 ? [] : groups[..n];
    }
}
