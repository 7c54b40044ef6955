using Vmsan.Agent.Exec;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Users;

namespace Vmsan.Agent.Sessions;

/// <summary>A reason-coded refusal to start or find an exec (mapped to HTTP statuses and error frames).</summary>
internal sealed class SessionException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;
}

/// <summary>Every exec started through the API: the concurrency limits, the table behind ps/attach/kill.</summary>
internal sealed class SessionManager(ProcessReaper reaper, UserDatabase users, AgentLimits limits)
{
    private readonly Lock _gate = new();
    private readonly List<Session> _sessions = [];
    private int _running;

    public AgentLimits Limits => limits;

    public UserDatabase Users => users;

    /// <summary>Whether a new exec would be refused now (checked before a WebSocket upgrade, to answer 429).</summary>
    public bool AtCapacity => Volatile.Read(ref _running) >= limits.MaxExecs;

    /// <summary>Takes one of the concurrent-exec slots (POST /exec uses these too).</summary>
    /// <exception cref="SessionException">429 when every slot is taken.</exception>
    public void Reserve()
    {
        if (Interlocked.Increment(ref _running) > limits.MaxExecs)
        {
            Interlocked.Decrement(ref _running);
            throw new SessionException(429, AgentErrorCodes.LimitReached, $"too many concurrent execs (limit {limits.MaxExecs})");
        }
    }

    public void Release() => Interlocked.Decrement(ref _running);

    /// <summary>
    /// Creates and starts a session; <paramref name="firstViewer"/> (if any) is attached before the process starts, so it
    /// sees every frame. A running session with the requested name is attached instead.
    /// </summary>
    public Session StartOrAttach(ExecRequest request, Viewer? firstViewer)
    {
        if (!string.IsNullOrEmpty(request.Session))
        {
            lock (_gate)
            {
                if (_sessions.Find(s => s.Name == request.Session && s.Running) is { } existing)
                {
                    if (firstViewer is not null && !existing.Attach(firstViewer))
                    {
                        throw new SessionException(429, AgentErrorCodes.LimitReached, $"session {request.Session} has {limits.MaxViewers} viewers already");
                    }

                    return existing;
                }

                if (_sessions.Count(s => s.Name is not null && s.Running) >= limits.MaxSessions)
                {
                    throw new SessionException(429, AgentErrorCodes.LimitReached, $"too many sessions (limit {limits.MaxSessions})");
                }
            }
        }

        UserAccount user;
        try
        {
            user = users.Resolve(request.User);
        }
        catch (UserNotFoundException e)
        {
            throw new SessionException(400, AgentErrorCodes.UserNotFound, e.Message);
        }

        Reserve();
        return StartReserved(request, user, firstViewer, listed: true);
    }

    /// <summary>
    /// POST /exec: a plain session with one viewer (the HTTP response), kept out of ps, attach and kill. The caller has
    /// taken a slot with <see cref="Reserve"/>; from this call on the session owns it.
    /// </summary>
    public Session StartUnlisted(ExecRequest request, UserAccount user, Viewer viewer) =>
        StartReserved(request, user, viewer, listed: false);

    private Session StartReserved(ExecRequest request, UserAccount user, Viewer? firstViewer, bool listed)
    {
        var session = new Session(NewId(), request, user, limits, listed) { OnExit = Exited };
        lock (_gate)
        {
            _sessions.Add(session);
        }

        if (firstViewer is not null)
        {
            session.Attach(firstViewer);
        }

        try
        {
            session.Launch(reaper);
        }
        catch
        {
            if (session.Pid == 0)
            {
                // Nothing was spawned (no pipe, no PTY...): no exit will ever release the slot.
                Forget(session);
                Release();
            }
            else
            {
                session.KillGroup(Libc.SIGKILL);
            }

            throw;
        }

        return session;
    }

    /// <summary>By exec id, else by session name (a running one first).</summary>
    public Session Find(string idOrName)
    {
        lock (_gate)
        {
            return _sessions.Find(s => s.Listed && s.Id == idOrName)
                ?? _sessions.Find(s => s.Name == idOrName && s.Running)
                ?? _sessions.FindLast(s => s.Name == idOrName)
                ?? throw new SessionException(404, AgentErrorCodes.ExecNotFound, $"no exec or session '{idOrName}'");
        }
    }

    public IReadOnlyList<ExecInfo> List()
    {
        lock (_gate)
        {
            return [.. _sessions.Where(s => s.Listed).Select(s => s.Info())];
        }
    }

    /// <summary>
    /// A snapshot clone's table starts empty: every session, running or exited, listed or not, is forgotten, so no id
    /// or session name from the source finds anything here. Running processes are left alone (they are the clone's
    /// processes now, visible in /proc) and keep their exec slot until they exit; their output goes nowhere.
    /// </summary>
    /// <returns>How many sessions were forgotten, and how many of them still run.</returns>
    public (int Forgotten, int Running) ForgetAll()
    {
        lock (_gate)
        {
            var result = (_sessions.Count, _sessions.Count(s => s.Running));
            _sessions.Clear();
            return result;
        }
    }

    /// <summary>Kills every running session's process group, listed or not (host-mode shutdown).</summary>
    public void KillAll()
    {
        lock (_gate)
        {
            foreach (var session in _sessions)
            {
                session.KillGroup(Libc.SIGKILL);
            }
        }
    }

    private void Exited(Session session)
    {
        Release();
        lock (_gate)
        {
            if (!session.Detached)
            {
                _sessions.Remove(session);
                return;
            }

            var exited = _sessions.Where(s => !s.Running).ToList();
            for (var i = 0; i < exited.Count - limits.KeepExited; i++)
            {
                _sessions.Remove(exited[i]);
            }
        }
    }

    private void Forget(Session session)
    {
        lock (_gate)
        {
            _sessions.Remove(session);
        }
    }

    private static string NewId() => "e-" + Random.Shared.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
}
