using Vmsan.Agent.Client;
using Vmsan.Core.State;

namespace Vmsan.Lifecycle;

/// <summary>
/// One agent client per VM, reused across calls: its HTTP connections stay pooled (keep-alive through the VM's
/// namespace socket) and the guest clock is measured once per client rather than before every call. A client is
/// replaced when the VM's VMM process or token changes (stop/start, a clone's rekey), and disposed with the owner.
/// </summary>
internal sealed class AgentConnections : IDisposable
{
    private readonly Dictionary<string, (string Key, AgentClient Client)> _byVm = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>The cached client for <paramref name="rec"/>'s running VMM, created on first use.</summary>
    public AgentClient Get(VmRecord rec, string token)
    {
        // The namespace handle the client connects through is /proc/PID/ns/net of this VMM: a new VMM (same pid or
        // not) needs a new client, which its start time tells apart.
        var key = $"{rec.Vmm?.Pid}:{rec.Vmm?.StartTime}:{token}";
        AgentClient? stale = null;
        try
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_byVm.TryGetValue(rec.Id, out var cached))
                {
                    if (cached.Key == key)
                        return cached.Client;
                    stale = cached.Client;
                }
                var client = VmAgent.For(rec, token);
                _byVm[rec.Id] = (key, client);
                return client;
            }
        }
        finally
        {
            stale?.Dispose();
        }
    }

    /// <summary>Drops the VM's client (it stopped or was removed).</summary>
    public void Forget(string id)
    {
        AgentClient? client = null;
        lock (_lock)
        {
            if (_byVm.Remove(id, out var cached))
                client = cached.Client;
        }
        client?.Dispose();
    }

    public void Dispose()
    {
        List<AgentClient> all;
        lock (_lock)
        {
            _disposed = true;
            all = [.. _byVm.Values.Select(v => v.Client)];
            _byVm.Clear();
        }
        foreach (var c in all)
            c.Dispose();
    }
}
