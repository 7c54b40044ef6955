using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Files;

namespace Vmsan.Agent.Client;

internal sealed partial class AgentClient
{
    private static readonly MediaTypeHeaderValue TarMediaType = new(FilesProtocol.TarContentType);

    /// <summary>
    /// Uploads local files, directories (recursively) and symlinks (as symlinks) into <paramref name="remoteDirectory"/>
    /// (created when missing): each source lands as <c>remoteDirectory/EntryName</c>. Streamed: nothing is held whole in memory.
    /// </summary>
    /// <param name="remoteDirectory">Absolute, or relative to the user's home.</param>
    /// <param name="sources">What to send and under which names.</param>
    /// <param name="user">Who owns the files in the guest; null lets the agent choose (<c>user</c> when it exists, else root).</param>
    /// <param name="cancellationToken">Cancelling aborts the upload; the agent then leaves no partial file.</param>
    /// <returns>What the agent wrote.</returns>
    /// <exception cref="AgentException">Refused (<see cref="AgentException.Code"/>: <c>UNSAFE_ENTRY</c>, <c>PAYLOAD_TOO_LARGE</c>,
    /// <c>TOO_MANY_TRANSFERS</c>, <c>WRITE_FAILED</c>, <c>USER_NOT_FOUND</c>...) or the stream broke.</exception>
    /// <param name="progress">Receives the tar bytes sent so far.</param>
    public Task<TransferSummary> UploadAsync(string remoteDirectory, IReadOnlyList<TarSource> sources, string? user = null,
        CancellationToken cancellationToken = default, IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(sources);
        return UploadContentAsync(remoteDirectory, new TarPackContent(sources, progress), user, cancellationToken);
    }

    /// <summary>Uploads a ready-made tar stream (e.g. stdin) and extracts it under <paramref name="remoteDirectory"/>.</summary>
    /// <exception cref="AgentException">As for <see cref="UploadAsync"/>.</exception>
    public Task<TransferSummary> UploadTarAsync(string remoteDirectory, Stream tar, string? user = null, CancellationToken cancellationToken = default,
        IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(tar);
        return UploadContentAsync(remoteDirectory, new StreamContent(progress is null ? tar : new ProgressStream(tar, progress), 256 * 1024), user, cancellationToken);
    }

    /// <summary>
    /// Downloads a remote file or directory, with <c>docker cp</c> semantics: into <paramref name="localPath"/> when it is an
    /// existing directory (as <c>localPath/NAME</c>), else as <paramref name="localPath"/> itself (its parent must exist).
    /// Host-side safety: entries the guest sends with <c>..</c>, absolute names, or through symlinks leading out are refused.
    /// </summary>
    /// <exception cref="AgentException">The agent refused (<c>PATH_NOT_FOUND</c>...) or the stream broke.</exception>
    /// <exception cref="TarEntryRejectedException">The guest sent an unsafe entry.</exception>
    /// <exception cref="TarWriteException">A local write failed.</exception>
    public async Task<TransferSummary> DownloadAsync(string remotePath, string localPath, string? user = null, CancellationToken cancellationToken = default,
        IProgress<long>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(localPath);
        var local = Path.GetFullPath(localPath);
        string root;
        string? rename;
        var remoteName = Path.GetFileName(remotePath.TrimEnd('/'));
        if (Directory.Exists(local))
        {
            root = local;
            rename = remoteName is "" or "." ? null : remoteName;
        }
        else
        {
            root = Path.GetDirectoryName(local.TrimEnd('/')) ?? "/";
            rename = Path.GetFileName(local.TrimEnd('/'));
            if (!Directory.Exists(root))
            {
                throw new TarWriteException($"{root}: no such directory");
            }
        }

        using var response = await StartDownloadAsync(remotePath, user, cancellationToken).ConfigureAwait(false);
        var raw = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var body = progress is null ? raw : new ProgressStream(raw, progress);
        await using (raw.ConfigureAwait(false))
        {
            try
            {
                // Every entry is forced under the one expected top-level name: a guest cannot scatter files.
                return await new TarExtractor(root, new TarExtractOptions { RenameTopLevel = rename }).ExtractAsync(body, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                throw new AgentException(AgentErrorReason.Protocol, $"download stream broke: {e.Message}", innerException: e);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException)
            {
                throw new AgentException(AgentErrorReason.Protocol, $"the agent sent an invalid tar stream: {e.Message}", innerException: e);
            }
        }
    }

    /// <summary>Copies the raw tar stream of a remote file or directory to <paramref name="output"/>; returns its byte count.</summary>
    /// <exception cref="AgentException">The agent refused (<c>PATH_NOT_FOUND</c>...) or the stream broke.</exception>
    public async Task<long> DownloadTarAsync(string remotePath, Stream output, string? user = null, CancellationToken cancellationToken = default,
        IProgress<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        using var response = await StartDownloadAsync(remotePath, user, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            var buffer = new byte[256 * 1024];
            long total = 0;
            try
            {
                int n;
                while ((n = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    total += n;
                    progress?.Report(total);
                }
            }
            catch (Exception e) when (e is HttpRequestException || (e is IOException && !cancellationToken.IsCancellationRequested))
            {
                throw new AgentException(AgentErrorReason.Protocol, $"download stream broke: {e.Message}", innerException: e);
            }

            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return total;
        }
    }

    private async Task<HttpResponseMessage> StartDownloadAsync(string remotePath, string? user, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(remotePath);
        using var request = new HttpRequestMessage(HttpMethod.Get, FilesUri(remotePath, user));
        var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            if (response.Content.Headers.ContentType?.MediaType != FilesProtocol.TarContentType)
            {
                throw new AgentException(AgentErrorReason.Protocol, $"download answered {response.Content.Headers.ContentType}, not a tar stream");
            }

            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private async Task<TransferSummary> UploadContentAsync(string remoteDirectory, HttpContent content, string? user, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(remoteDirectory);
        using (content)
        {
            content.Headers.ContentType = TarMediaType;
            using var request = new HttpRequestMessage(HttpMethod.Put, FilesUri(remoteDirectory, user)) { Content = content };
            // The agent checks auth, limits and the destination before taking the body.
            request.Headers.ExpectContinue = true;
            using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return JsonSerializer.Deserialize(bytes, FilesJsonContext.Default.TransferSummary)
                    ?? throw new AgentException(AgentErrorReason.Protocol, "upload answered null");
            }
            catch (JsonException e)
            {
                throw new AgentException(AgentErrorReason.Protocol, $"upload answered invalid JSON: {e.Message}", innerException: e);
            }
        }
    }

    private static string FilesUri(string path, string? user) =>
        FilesProtocol.Path.TrimStart('/') + "?path=" + Uri.EscapeDataString(path)
        + (string.IsNullOrEmpty(user) ? "" : "&user=" + Uri.EscapeDataString(user));

    /// <summary>A request body that packs the sources while it is sent (chunked; no length known in advance).</summary>
    private sealed class TarPackContent(IReadOnlyList<TarSource> sources, IProgress<long>? progress) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            // Not disposed: that would close the request stream, which belongs to HttpClient.
            var buffered = new BufferedStream(progress is null ? stream : new ProgressStream(stream, progress), 256 * 1024);
            await TarPacker.PackAsync(buffered, sources, cancellationToken: cancellationToken).ConfigureAwait(false);
            await buffered.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
