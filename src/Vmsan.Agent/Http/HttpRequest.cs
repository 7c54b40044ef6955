namespace Vmsan.Agent.Http;

/// <summary>A parsed request head. The body is read through <see cref="HttpConnection"/>.</summary>
internal sealed class HttpRequest
{
    public required string Method { get; init; }

    public required string Target { get; init; }

    public required string Path { get; init; }

    public string? Query { get; init; }

    public required bool IsHttp11 { get; init; }

    public required IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; }

    /// <summary>Null when the request has no Content-Length (no body, or chunked).</summary>
    public long? ContentLength { get; init; }

    public bool Chunked { get; init; }

    public bool KeepAlive { get; init; }

    public bool ExpectContinue { get; init; }

    public bool HasBody => Chunked || ContentLength > 0;

    /// <summary>Set once the body has been read to its end.</summary>
    public bool BodyConsumed { get; set; }

    public string? GetHeader(string name)
    {
        foreach (var header in Headers)
        {
            if (string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return header.Value;
            }
        }

        return null;
    }
}

/// <summary>The client sent something that is not acceptable HTTP/1.1: answered 400 (or <see cref="Status"/>).</summary>
internal sealed class HttpBadRequestException : Exception
{
    public HttpBadRequestException(string message, int status = 400, bool closeConnection = true) : base(message)
    {
        Status = status;
        CloseConnection = closeConnection;
    }

    public int Status { get; }

    /// <summary>False when the request was framed correctly and the connection can carry on.</summary>
    public bool CloseConnection { get; }
}
