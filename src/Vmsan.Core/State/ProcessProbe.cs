using Vmsan.Core.Interop;

namespace Vmsan.Core.State;

/// <summary>Answers "is this exact process still alive?" from /proc.</summary>
public static class ProcessProbe
{
    /// <summary>Start time (clock ticks since boot, field 22 of /proc/PID/stat), or null when gone.</summary>
    public static long? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // rest[0] is field 3 (state); field 22 is rest[19]. A zombie is as good as dead.
            if (rest[0] == "Z" || rest[0] == "X")
                return null;
            return long.Parse(rest[19], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static ProcessRef? Ref(int pid) => StartTime(pid) is { } t ? new ProcessRef(pid, t) : null;

    public static bool IsAlive(ProcessRef? p) => p is not null && StartTime(p.Pid) == p.StartTime;

    public static void Kill(ProcessRef? p, int signal = Libc.SIGKILL)
    {
        if (IsAlive(p))
            Libc.Kill(p!.Pid, signal);
    }

    public static void Signal(ProcessRef? p, int signal) => Kill(p, signal);
}
