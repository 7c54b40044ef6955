using Vmsan.Agent.Http;

namespace Vmsan.Agent.Api;

/// <summary>POST /shutdown: answers 202, then runs the shutdown sequence once the response is out.</summary>
internal sealed class ShutdownEndpoint(Action shutdown)
{
    private int _started;

    public async ValueTask HandleAsync(RequestContext context)
    {
        context.KeepAlive = false;
        await context.WriteAsync(202, Protocol.AgentProtocol.JsonContentType, """{"status":"shutting down"}"""u8.ToArray()).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            _ = Task.Run(shutdown);
        }
    }
}
