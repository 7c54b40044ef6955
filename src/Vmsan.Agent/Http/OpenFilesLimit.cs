namespace Vmsan.Agent.Http;

/// <summary>
/// Raises the agent's open-files limit (the kernel's default soft limit is 1,024, which a guest process's connections
/// could exhaust). As PID 1 (root) the hard limit too, to <see cref="GuestLimit"/>; otherwise the soft limit to the hard one.
/// Children inherit it, as they would from a container runtime.
/// </summary>
internal static class OpenFilesLimit
{
    public const ulong GuestLimit = 65536;

    public static void Raise(bool asInit)
    {
        if (Libc.GetRlimit(Libc.RLIMIT_NOFILE, out var current) != 0)
        {
            return;
        }

        var wanted = asInit ? new Libc.RLimit { Soft = Math.Max(GuestLimit, current.Hard), Hard = Math.Max(GuestLimit, current.Hard) }
            : new Libc.RLimit { Soft = current.Hard, Hard = current.Hard };
        if (wanted.Soft != current.Soft && Libc.SetRlimit(Libc.RLIMIT_NOFILE, wanted) != 0)
        {
            AgentLog.Warn($"RLIMIT_NOFILE {wanted.Soft}: {Libc.StrError(Libc.LastErrno)}");
        }
    }
}
