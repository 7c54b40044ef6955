using System.Text.Json;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Sessions;

namespace Vmsan.Agent.Api;

/// <summary>POST /execs (start detached), GET /execs (list), POST /execs/signal (kill).</summary>
internal sealed class ExecsEndpoint(SessionManager sessions)
{
    public async ValueTask StartAsync(RequestContext context)
    {
        var body = await context.ReadBodyAsync(1024 * 1024, context.ServerToken).ConfigureAwait(false);
        var request = ExecEndpoint.Parse(body, allowEmptyCmd: false) with { Detach = true, Stdin = false };
        try
        {
            var session = sessions.StartOrAttach(request, null);
            await context.WriteJsonAsync(201, session.Info(), AgentJsonContext.Default.ExecInfo).ConfigureAwait(false);
        }
        catch (SessionException e)
        {
            await context.WriteErrorAsync(e.Status, e.Code, e.Message).ConfigureAwait(false);
        }
    }

    public ValueTask ListAsync(RequestContext context) =>
        context.WriteJsonAsync(200, new ExecList(sessions.List()), AgentJsonContext.Default.ExecList);

    public async ValueTask SignalAsync(RequestContext context)
    {
        var body = await context.ReadBodyAsync(64 * 1024, context.ServerToken).ConfigureAwait(false);
        ExecSignalRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, AgentJsonContext.Default.ExecSignalRequest);
        }
        catch (JsonException e)
        {
            throw new HttpBadRequestException($"invalid signal request: {e.Message}", closeConnection: false);
        }

        if (request is null || string.IsNullOrEmpty(request.Id) || request.Signal is < 1 or > 64)
        {
            throw new HttpBadRequestException("need {\"id\":\"...\",\"signal\":1..64}", closeConnection: false);
        }

        try
        {
            var session = sessions.Find(request.Id);
            if (!session.Running)
            {
                await context.WriteErrorAsync(409, AgentErrorCodes.ExecExited, $"exec {session.Id} already exited").ConfigureAwait(false);
                return;
            }

            session.KillGroup(request.Signal);
            await context.WriteJsonAsync(200, session.Info(), AgentJsonContext.Default.ExecInfo).ConfigureAwait(false);
        }
        catch (SessionException e)
        {
            await context.WriteErrorAsync(e.Status, e.Code, e.Message).ConfigureAwait(false);
        }
    }
}
