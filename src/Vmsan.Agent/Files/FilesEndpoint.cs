using System.Text.Json;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Agent.Users;
using Vmsan.Files;

namespace Vmsan.Agent.Files;

/// <summary>
/// <c>PUT /files?path=DIR</c> extracts a tar body under DIR; <c>GET /files?path=PATH</c> answers a tar of a file or
/// directory. Both stream through bounded buffers; see <see cref="TarExtractor"/> for the safety rules and
/// docs/agent-api.md ("Files") for the contract.
/// </summary>
internal sealed class FilesEndpoint
{
    /// <summary>After a refused archive, how much of the rest of the body is read (and dropped) to keep the connection.</summary>
    private const long DrainBudgetBytes = 64L * 1024 * 1024;

    private static readonly TimeSpan DrainBudgetTime = TimeSpan.FromSeconds(2);

    /// <summary>Read-ahead over the request body: tar headers and small files are parsed from memory, not one receive each.</summary>
    private const int BodyBufferSize = 256 * 1024;

    private readonly FilesOptions _options;
    private readonly UserDatabase _users;
    private int _running;

    public FilesEndpoint(FilesOptions options, UserDatabase users)
    {
        _options = options;
        _users = users;
    }

    public async ValueTask UploadAsync(RequestContext context)
    {
        if (!TryEnter())
        {
            await RejectEarlyAsync(context, 429, FilesProtocol.Errors.TooManyTransfers,
                $"{_options.MaxConcurrentTransfers} transfers are already running; retry later").ConfigureAwait(false);
            return;
        }

        try
        {
            await UploadCoreAsync(context).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public async ValueTask DownloadAsync(RequestContext context)
    {
        if (!TryEnter())
        {
            await RejectEarlyAsync(context, 429, FilesProtocol.Errors.TooManyTransfers,
                $"{_options.MaxConcurrentTransfers} transfers are already running; retry later").ConfigureAwait(false);
            return;
        }

        try
        {
            await DownloadCoreAsync(context).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    private bool TryEnter()
    {
        if (Interlocked.Increment(ref _running) <= _options.MaxConcurrentTransfers)
        {
            return true;
        }

        Interlocked.Decrement(ref _running);
        return false;
    }

    private async ValueTask UploadCoreAsync(RequestContext context)
    {
        var ct = context.ServerToken;
        var request = context.Request;
        if (request.ContentLength > _options.MaxUploadBytes)
        {
            await RejectEarlyAsync(context, 413, AgentErrorCodes.PayloadTooLarge,
                $"upload of {request.ContentLength} bytes is over the limit of {_options.MaxUploadBytes} bytes").ConfigureAwait(false);
            return;
        }

        if (!TryResolve(context, out var user, out var destination, out var error))
        {
            await RejectEarlyAsync(context, 400, error.Code, error.Message).ConfigureAwait(false);
            return;
        }

        try
        {
            CreateDestination(destination, user);
        }
        catch (Exception e) when (e is TarWriteException or IOException or UnauthorizedAccessException)
        {
            await RejectEarlyAsync(context, 409, FilesProtocol.Errors.WriteFailed, $"destination {destination}: {e.Message}").ConfigureAwait(false);
            return;
        }

        // Not disposed: the connection owns the socket.
        var body = new BufferedStream(context.Connection.OpenRequestBody(request, _options.MaxUploadBytes), BodyBufferSize);
        var extractor = new TarExtractor(destination, new TarExtractOptions { Uid = (int)user.Uid, Gid = (int)user.Gid });
        TransferSummary summary;
        try
        {
            summary = await extractor.ExtractAsync(body, ct).ConfigureAwait(false);
            // Trailing record padding after the end-of-archive blocks (GNU tar pads to 10 KiB).
            await DrainAsync(body, long.MaxValue, Timeout.InfiniteTimeSpan, ct).ConfigureAwait(false);
        }
        catch (RequestBodyTooLargeException e)
        {
            AgentLog.Info($"upload to {destination} refused: {e.Message}");
            await RejectEarlyAsync(context, 413, AgentErrorCodes.PayloadTooLarge, $"upload over the limit of {e.Limit} bytes").ConfigureAwait(false);
            return;
        }
        catch (TarEntryRejectedException e)
        {
            AgentLog.Info($"upload to {destination} refused: {e.Message}");
            await RejectMidBodyAsync(context, body, 400, FilesProtocol.Errors.UnsafeEntry, e.Message).ConfigureAwait(false);
            return;
        }
        catch (TarWriteException e)
        {
            AgentLog.Info($"upload to {destination} failed: {e.Message}");
            await RejectMidBodyAsync(context, body, 409, FilesProtocol.Errors.WriteFailed, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ArgumentException)
        {
            AgentLog.Info($"upload to {destination}: not a tar archive: {e.Message}");
            await RejectMidBodyAsync(context, body, 400, FilesProtocol.Errors.BadArchive, $"not a valid tar archive: {e.Message}").ConfigureAwait(false);
            return;
        }

        AgentLog.Debug($"upload to {destination}: {summary.Files} files, {summary.Bytes} bytes");
        await context.WriteAsync(200, AgentProtocol.JsonContentType,
            JsonSerializer.SerializeToUtf8Bytes(summary, FilesJsonContext.Default.TransferSummary), cancellationToken: ct).ConfigureAwait(false);
    }

    private async ValueTask DownloadCoreAsync(RequestContext context)
    {
        var ct = context.ServerToken;
        if (!TryResolve(context, out var user, out var path, out var error))
        {
            await context.WriteErrorAsync(400, error.Code, error.Message).ConfigureAwait(false);
            return;
        }

        // Everything is read as the user (root only when asked for), so the kernel's permission checks apply.
        var access = new UserFileAccess(user);
        if (Check(access, path) is { } refusal)
        {
            await context.WriteErrorAsync(refusal.Status, refusal.Code, refusal.Message).ConfigureAwait(false);
            return;
        }

        var name = path == "/" ? "." : Path.GetFileName(path);
        var response = await context.StartStreamingAsync(200, FilesProtocol.TarContentType, ct).ConfigureAwait(false);
        try
        {
            // Not disposed: the response stream is completed below, not closed.
            var buffered = new BufferedStream(response, 256 * 1024);
            var summary = await TarPacker.PackAsync(buffered, [new TarSource(path, name)],
                skipped => AgentLog.Debug($"download {path}: skipped {skipped} (unreadable, or not a file, directory or symlink)"), ct, access).ConfigureAwait(false);
            await buffered.FlushAsync(ct).ConfigureAwait(false);
            AgentLog.Debug($"download {path}: {summary.Files} files, {summary.Bytes} bytes");

            await context.CompleteStreamingAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Mid-stream: the only honest signal left is a broken connection (no final chunk).
            AgentLog.Info($"download {path} failed: {e.Message}");
            context.Connection.Abort();
        }
    }

    /// <summary>
    /// Why <paramref name="path"/> cannot be downloaded by the user, or null: missing (404), not readable (409), a device,
    /// FIFO or socket, or a file of a pseudo file system whose stat size is not its content (/proc/kcore: 128 TiB) (400).
    /// </summary>
    private static (int Status, string Code, string Message)? Check(UserFileAccess access, string path)
    {
        PathStat stat;
        try
        {
            stat = access.Run(() => PathStat.Of(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (409, FilesProtocol.Errors.PermissionDenied, $"{path}: {e.Message}");
        }

        switch (stat.Kind)
        {
            case PathKind.Missing:
                return (404, FilesProtocol.Errors.PathNotFound, $"{path}: no such file or directory");
            case PathKind.Other:
                return (400, FilesProtocol.Errors.UnsupportedFile, $"{path}: a device, FIFO or socket cannot be downloaded");
            case PathKind.Symlink:
                return null;
        }

        var fd = access.Run(() => FileSystemInterop.TryOpenForRead(path));
        if (fd < 0)
        {
            return fd == -FileSystemInterop.EAccess
                ? (409, FilesProtocol.Errors.PermissionDenied, $"{path}: permission denied")
                : (409, FilesProtocol.Errors.PermissionDenied, $"{path}: cannot be opened: {Libc.StrError(-fd)}");
        }

        try
        {
            return stat.Kind == PathKind.File && FileSystemInterop.IsOnPseudoFileSystem(fd)
                ? (400, FilesProtocol.Errors.UnsupportedFile, $"{path}: a file of a pseudo file system (its size is not its content); read it with exec (cat)")
                : null;
        }
        finally
        {
            FileSystemInterop.CloseQuietly(fd);
        }
    }

    /// <summary>
    /// Reads the user and path of the query; a relative path is taken from the user's home. Users resolve exactly as
    /// for exec (<see cref="UserDatabase"/>: a name, a uid, <c>name:group</c>; by default <c>user</c> when the guest has it).
    /// </summary>
    private bool TryResolve(RequestContext context, out UserAccount user, out string path, out AgentError error)
    {
        var query = ParseQuery(context.Request.Query);
        path = "";
        error = new AgentError("", "");
        try
        {
            user = _users.Resolve(query.GetValueOrDefault("user"));
        }
        catch (UserNotFoundException e)
        {
            user = null!;
            error = new AgentError(AgentErrorCodes.UserNotFound, TarPaths.Printable(e.Message));
            return false;
        }

        var raw = query.GetValueOrDefault("path");
        if (string.IsNullOrEmpty(raw) || raw.Contains('\0', StringComparison.Ordinal))
        {
            error = new AgentError(AgentErrorCodes.BadRequest, "the query needs path=... (without NUL)");
            return false;
        }

        path = Path.GetFullPath(raw, user.Home);
        if (path.Length > 1)
        {
            path = path.TrimEnd('/');
        }

        return true;
    }

    /// <summary>mkdir -p; the directories it creates belong to the user.</summary>
    private static void CreateDestination(string destination, UserAccount user)
    {
        var missing = new Stack<string>();
        for (var p = destination; !Directory.Exists(p); p = Path.GetDirectoryName(p) ?? "/")
        {
            if (File.Exists(p) || new FileInfo(p).LinkTarget is not null)
            {
                throw new TarWriteException($"{p} exists and is not a directory");
            }

            missing.Push(p);
        }

        while (missing.Count > 0)
        {
            var dir = missing.Pop();
            Directory.CreateDirectory(dir);
            FileSystemInterop.LChown(dir, (int)user.Uid, (int)user.Gid);
        }
    }

    private static Dictionary<string, string> ParseQuery(string? query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(query))
        {
            return result;
        }

        foreach (var pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Unescape(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Unescape(pair[(eq + 1)..]);
            result.TryAdd(key, value);
        }

        return result;

        static string Unescape(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));
    }

    /// <summary>An error before the body is read: answer, then close gracefully (the client may have started sending).</summary>
    private static async ValueTask RejectEarlyAsync(RequestContext context, int status, string code, string message)
    {
        var needsClose = context.Request.HasBody && !context.Request.BodyConsumed;
        await context.WriteErrorAsync(status, code, message, close: needsClose).ConfigureAwait(false);
        if (needsClose)
        {
            await context.Connection.CloseGracefullyAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// An error partway through the body: nothing more is written; the rest of the body is read and dropped for a
    /// bounded time so the client gets the answer (and the connection survives when the body ends within it).
    /// </summary>
    private static async ValueTask RejectMidBodyAsync(RequestContext context, Stream body, int status, string code, string message)
    {
        var drained = false;
        try
        {
            drained = await DrainAsync(body, DrainBudgetBytes, DrainBudgetTime, context.ServerToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or HttpBadRequestException or RequestBodyTooLargeException or OperationCanceledException)
        {
        }

        await context.WriteErrorAsync(status, code, message, close: !drained).ConfigureAwait(false);
        if (!drained)
        {
            await context.Connection.CloseGracefullyAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads and drops the body; true when it ended within the budget.</summary>
    private static async Task<bool> DrainAsync(Stream body, long maxBytes, TimeSpan maxTime, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(maxTime);
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long total = 0;
            while (total <= maxBytes)
            {
                int n;
                try
                {
                    n = await body.ReadAsync(scratch, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    return false;
                }

                if (n == 0)
                {
                    return true;
                }

                total += n;
            }

            return false;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}
