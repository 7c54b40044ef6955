using System.Globalization;
using System.Text;

namespace Vmsan.Agent.Http;

internal sealed partial class HttpConnection
{
    /// <summary>Reads and parses the next request head; null when the client closed between requests.</summary>
    private async ValueTask<HttpRequest?> ReadRequestHeadAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        var first = true;
        // A total deadline for the head (not per read): for a connection's first request it runs from accept.
        var deadline = _requestsServed == 0 ? AcceptedAt + (long)_limits.HeadTimeout.TotalMilliseconds : 0;
        while (true)
        {
            var available = _buffer.AsSpan(_start, _end - _start);
            // Tolerate stray CRLFs between requests (RFC 9112 2.2).
            while (available.Length > 0 && (available[0] == '\r' || available[0] == '\n') && scanned == 0)
            {
                _start++;
                available = available[1..];
            }

            var headEnd = available[Math.Max(0, scanned - 3)..].IndexOf("\r\n\r\n"u8);
            if (headEnd >= 0)
            {
                headEnd += Math.Max(0, scanned - 3);
                var head = available[..headEnd];
                var request = ParseHead(head);
                _start += headEnd + 4;
                Interlocked.Increment(ref _requestsServed);
                return request;
            }

            scanned = available.Length;
            if (available.Length >= _limits.MaxHeadBytes)
            {
                throw new HttpBadRequestException($"request head larger than {_limits.MaxHeadBytes} bytes");
            }

            if (deadline == 0 && available.Length > 0)
            {
                deadline = Environment.TickCount64 + (long)_limits.HeadTimeout.TotalMilliseconds;
            }

            TimeSpan timeout;
            if (deadline == 0)
            {
                timeout = first ? _limits.IdleTimeout : _limits.RequestTimeout;
            }
            else
            {
                var left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    throw new IOException($"request head not complete within {_limits.HeadTimeout.TotalSeconds:0.#} s");
                }

                timeout = TimeSpan.FromMilliseconds(left);
            }

            first = false;
            if (!await FillAsync(timeout, cancellationToken).ConfigureAwait(false))
            {
                if (_end - _start == 0)
                {
                    return null;
                }

                throw new HttpBadRequestException("connection closed inside a request head");
            }
        }
    }

    private HttpRequest ParseHead(ReadOnlySpan<byte> head)
    {
        var lineEnd = head.IndexOf("\r\n"u8);
        var requestLine = lineEnd < 0 ? head : head[..lineEnd];
        var rest = lineEnd < 0 ? [] : head[(lineEnd + 2)..];

        var sp1 = requestLine.IndexOf((byte)' ');
        var sp2 = sp1 < 0 ? -1 : requestLine[(sp1 + 1)..].IndexOf((byte)' ');
        if (sp1 <= 0 || sp2 <= 0)
        {
            throw new HttpBadRequestException("malformed request line");
        }

        sp2 += sp1 + 1;
        var methodBytes = requestLine[..sp1];
        var targetBytes = requestLine[(sp1 + 1)..sp2];
        var versionBytes = requestLine[(sp2 + 1)..];
        if (!IsToken(methodBytes))
        {
            throw new HttpBadRequestException("malformed method");
        }

        bool http11;
        if (versionBytes.SequenceEqual("HTTP/1.1"u8))
        {
            http11 = true;
        }
        else if (versionBytes.SequenceEqual("HTTP/1.0"u8))
        {
            http11 = false;
        }
        else
        {
            throw new HttpBadRequestException("unsupported HTTP version");
        }

        if (targetBytes.Length == 0 || targetBytes[0] != '/' || !IsVisibleAscii(targetBytes))
        {
            throw new HttpBadRequestException("malformed request target");
        }

        var target = Encoding.ASCII.GetString(targetBytes);
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var headers = new List<KeyValuePair<string, string>>();
        while (rest.Length > 0)
        {
            var end = rest.IndexOf("\r\n"u8);
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 2)..];
            if (line.Length == 0)
            {
                continue;
            }

            if (line[0] is (byte)' ' or (byte)'\t')
            {
                throw new HttpBadRequestException("obsolete header folding");
            }

            var colon = line.IndexOf((byte)':');
            if (colon <= 0 || !IsToken(line[..colon]))
            {
                throw new HttpBadRequestException("malformed header line");
            }

            var value = line[(colon + 1)..].Trim(" \t"u8);
            foreach (var b in value)
            {
                if ((b < 0x20 && b != '\t') || b == 0x7f)
                {
                    throw new HttpBadRequestException("control character in a header value");
                }
            }

            if (headers.Count >= _limits.MaxHeaderCount)
            {
                throw new HttpBadRequestException("too many headers");
            }

            headers.Add(new(Encoding.ASCII.GetString(line[..colon]), Encoding.Latin1.GetString(value)));
        }

        long? contentLength = null;
        var chunked = false;
        var keepAlive = http11;
        var expectContinue = false;
        foreach (var (name, value) in headers)
        {
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var length) ||
                    (contentLength is not null && contentLength != length))
                {
                    throw new HttpBadRequestException("invalid Content-Length");
                }

                contentLength = length;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                if (!value.Equals("chunked", StringComparison.OrdinalIgnoreCase) || chunked)
                {
                    throw new HttpBadRequestException("unsupported Transfer-Encoding", 501);
                }

                chunked = true;
            }
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                foreach (var token in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    if (token.Equals("close", StringComparison.OrdinalIgnoreCase))
                    {
                        keepAlive = false;
                    }
                }
            }
            else if (name.Equals("Expect", StringComparison.OrdinalIgnoreCase))
            {
                if (!value.Equals("100-continue", StringComparison.OrdinalIgnoreCase))
                {
                    throw new HttpBadRequestException("unsupported Expect");
                }

                expectContinue = http11;
            }
        }

        if (chunked && contentLength is not null)
        {
            // Both framings at once is the classic request-smuggling shape.
            throw new HttpBadRequestException("both Content-Length and Transfer-Encoding");
        }

        if (chunked && !http11)
        {
            throw new HttpBadRequestException("chunked body on HTTP/1.0");
        }

        return new HttpRequest
        {
            Method = Encoding.ASCII.GetString(methodBytes),
            Target = target,
            Path = q < 0 ? target : target[..q],
            Query = q < 0 ? null : target[(q + 1)..],
            IsHttp11 = http11,
            Headers = headers,
            ContentLength = contentLength,
            Chunked = chunked,
            KeepAlive = keepAlive,
            ExpectContinue = expectContinue,
        };
    }

    private static bool IsToken(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return false;
        }

        foreach (var b in bytes)
        {
            var ok = b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
                || "!#$%&'*+-.^_`|~"u8.Contains(b);
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsVisibleAscii(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b is <= 0x20 or >= 0x7f)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads the whole request body (Content-Length or chunked) into memory, up to <paramref name="maxBytes"/>.</summary>
    internal async ValueTask<byte[]> ReadBodyAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        if (request.BodyConsumed || !request.HasBody)
        {
            request.BodyConsumed = true;
            return [];
        }

        if (request.ContentLength is { } length)
        {
            if (length > maxBytes)
            {
                throw new HttpBadRequestException($"body larger than {maxBytes} bytes", 413);
            }

            await SendContinueIfExpectedAsync(request, cancellationToken).ConfigureAwait(false);
            var body = new byte[length];
            await ReadExactAsync(body, cancellationToken).ConfigureAwait(false);
            request.BodyConsumed = true;
            return body;
        }

        await SendContinueIfExpectedAsync(request, cancellationToken).ConfigureAwait(false);
        using var output = new MemoryStream();
        while (true)
        {
            var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
            var semicolon = line.IndexOf(';', StringComparison.Ordinal);
            var sizeText = (semicolon < 0 ? line : line[..semicolon]).Trim();
            if (sizeText.Length is 0 or > 15 ||
                !long.TryParse(sizeText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size))
            {
                throw new HttpBadRequestException("malformed chunk size");
            }

            if (size == 0)
            {
                // Trailers, ignored, up to the empty line.
                while ((await ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length > 0)
                {
                }

                request.BodyConsumed = true;
                return output.ToArray();
            }

            if (output.Length + size > maxBytes)
            {
                throw new HttpBadRequestException($"body larger than {maxBytes} bytes", 413);
            }

            var chunk = new byte[size];
            await ReadExactAsync(chunk, cancellationToken).ConfigureAwait(false);
            output.Write(chunk);
            if ((await ReadLineAsync(cancellationToken).ConfigureAwait(false)).Length != 0)
            {
                throw new HttpBadRequestException("missing CRLF after a chunk");
            }
        }
    }

    private async ValueTask SkipBodyAsync(HttpRequest request)
    {
        var remaining = request.ContentLength ?? 0;
        while (remaining > 0)
        {
            if (_start == _end && !await FillAsync(_limits.RequestTimeout, CancellationToken.None).ConfigureAwait(false))
            {
                throw new IOException("connection closed inside a request body");
            }

            var take = (int)Math.Min(remaining, _end - _start);
            _start += take;
            remaining -= take;
        }

        request.BodyConsumed = true;
    }

    private async ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        var done = 0;
        while (done < destination.Length)
        {
            if (_start == _end && !await FillAsync(_limits.RequestTimeout, cancellationToken).ConfigureAwait(false))
            {
                throw new HttpBadRequestException("connection closed inside a request body");
            }

            var take = Math.Min(destination.Length - done, _end - _start);
            _buffer.AsSpan(_start, take).CopyTo(destination.Span[done..]);
            _start += take;
            done += take;
        }
    }

    private async ValueTask<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            var available = _buffer.AsSpan(_start, _end - _start);
            var end = available[scanned..].IndexOf("\r\n"u8);
            if (end >= 0)
            {
                end += scanned;
                var line = Encoding.ASCII.GetString(available[..end]);
                _start += end + 2;
                return line;
            }

            scanned = Math.Max(0, available.Length - 1);
            if (available.Length > 4096)
            {
                throw new HttpBadRequestException("line too long in a chunked body");
            }

            if (!await FillAsync(_limits.RequestTimeout, cancellationToken).ConfigureAwait(false))
            {
                throw new HttpBadRequestException("connection closed inside a chunked body");
            }
        }
    }
}
