using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Http;

internal delegate ValueTask RequestHandler(RequestContext context);

/// <summary>Exact-path routing table with per-route authentication.</summary>
internal sealed class Router
{
    private readonly Dictionary<string, List<Route>> _routes = new(StringComparer.Ordinal);
    private readonly TokenAuthenticator _auth;

    public Router(TokenAuthenticator auth) => _auth = auth;

    private sealed record Route(string Method, RequestHandler Handler, bool Authenticated);

    public Router Map(string method, string path, RequestHandler handler, bool authenticated = true)
    {
        if (!_routes.TryGetValue(path, out var list))
        {
            _routes[path] = list = [];
        }

        list.Add(new Route(method, handler, authenticated));
        return this;
    }

    public async ValueTask DispatchAsync(RequestContext context)
    {
        var request = context.Request;
        if (!_routes.TryGetValue(request.Path, out var routes))
        {
            await context.WriteErrorAsync(404, AgentErrorCodes.NotFound, $"no endpoint {request.Path}").ConfigureAwait(false);
            return;
        }

        var route = routes.Find(r => string.Equals(r.Method, request.Method, StringComparison.Ordinal));
        if (route is null)
        {
            var allow = string.Join(", ", routes.Select(r => r.Method));
            await context.WriteErrorAsync(405, AgentErrorCodes.MethodNotAllowed, $"{request.Path} accepts {allow}",
                headers: [new("Allow", allow)]).ConfigureAwait(false);
            return;
        }

        if (route.Authenticated)
        {
            switch (_auth.Check(request.GetHeader("Authorization")))
            {
                case AuthResult.Missing:
                    await context.WriteErrorAsync(401, AgentErrorCodes.Unauthorized, "missing bearer token",
                        headers: [new("WWW-Authenticate", "Bearer")]).ConfigureAwait(false);
                    return;
                case AuthResult.Wrong:
                    await context.WriteErrorAsync(403, AgentErrorCodes.Forbidden, "wrong bearer token").ConfigureAwait(false);
                    return;
            }
        }

        await route.Handler(context).ConfigureAwait(false);
    }
}
