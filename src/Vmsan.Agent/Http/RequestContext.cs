using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Http;

/// <summary>One request being handled: its head, body access and the response API.</summary>
internal sealed class RequestContext
{
    private ResponseBodyStream? _body;

    public RequestContext(HttpConnection connection, HttpRequest request, CancellationToken serverToken)
    {
        Connection = connection;
        Request = request;
        ServerToken = serverToken;
        KeepAlive = request.KeepAlive;
    }

    public HttpConnection Connection { get; }

    public HttpRequest Request { get; }

    /// <summary>Fires when the agent shuts down.</summary>
    public CancellationToken ServerToken { get; }

    /// <summary>Whether the connection stays open after this response; handlers may turn it off.</summary>
    public bool KeepAlive { get; set; }

    public bool ResponseStarted { get; private set; }

    public bool ResponseCompleted { get; private set; }

    public ValueTask<byte[]> ReadBodyAsync(int maxBytes, CancellationToken cancellationToken) =>
        Connection.ReadBodyAsync(Request, maxBytes, cancellationToken);

    public async ValueTask WriteAsync(int status, string? contentType, ReadOnlyMemory<byte> body,
        IEnumerable<KeyValuePair<string, string>>? headers = null, CancellationToken cancellationToken = default)
    {
        StartResponse();
        await Connection.WriteSimpleResponseAsync(status, contentType, body, KeepAlive, headers, cancellationToken).ConfigureAwait(false);
        ResponseCompleted = true;
    }

    public ValueTask WriteJsonAsync<T>(int status, T value, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken = default) =>
        WriteAsync(status, AgentProtocol.JsonContentType, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo), null, cancellationToken);

    public ValueTask WriteErrorAsync(int status, string code, string message, bool close = false,
        IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        if (close)
        {
            KeepAlive = false;
        }

        return WriteAsync(status, AgentProtocol.JsonContentType,
            JsonSerializer.SerializeToUtf8Bytes(new AgentError(code, message), AgentJsonContext.Default.AgentError), headers);
    }

    /// <summary>Starts a streamed response: chunked for HTTP/1.1, close-delimited for HTTP/1.0.</summary>
    public async ValueTask<ResponseBodyStream> StartStreamingAsync(int status, string contentType, CancellationToken cancellationToken)
    {
        StartResponse();
        if (!Request.IsHttp11)
        {
            KeepAlive = false;
        }

        await Connection.WriteStreamingHeadAsync(status, contentType, Request.IsHttp11, KeepAlive, cancellationToken).ConfigureAwait(false);
        _body = new ResponseBodyStream(Connection.Stream, Request.IsHttp11);
        return _body;
    }

    public async ValueTask CompleteStreamingAsync(CancellationToken cancellationToken)
    {
        if (_body is null)
        {
            throw new InvalidOperationException("no streamed response");
        }

        await _body.CompleteAsync(cancellationToken).ConfigureAwait(false);
        ResponseCompleted = true;
    }

    /// <summary>Takes the raw connection (for HTTP Upgrade); the server forgets it.</summary>
    public Stream DetachConnection()
    {
        StartResponse();
        ResponseCompleted = true;
        return Connection.Detach();
    }

    private void StartResponse()
    {
        if (ResponseStarted)
        {
            throw new InvalidOperationException("response already started");
        }

        ResponseStarted = true;
    }
}
