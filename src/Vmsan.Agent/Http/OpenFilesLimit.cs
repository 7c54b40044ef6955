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
        if (Interop.GetRlimit(Interop.RLIMIT_NOFILE, out var current) != 0)
        {
            return;
        }

        var wanted = asInit ? new Interop.RLimit { Soft = Math.Max(GuestLimit, current.Hard), Hard = Math.Max(GuestLimit, current.Hard) }
            : new Interop.RLimit { Soft = current.Hard, Hard = current.Hard };
        if (wanted.Soft != current.Soft && Interop.SetRlimit(Interop.RLIMIT_NOFILE, wanted) != 0)
        {
            AgentLog.Warn($"RLIMIT_NOFILE {wanted.Soft}: {Interop.StrError(Interop.LastErrno)}");
        }
    }
}
