using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol.Files;
using Vmsan.Core.Errors;
using Vmsan.Files;

namespace Vmsan;

internal sealed partial class VmLifecycle
{
    public async Task<TransferSummary> UploadAsync(string id, IReadOnlyList<string> localSources, string remoteDirectory, string? user = null,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(localSources);
        var sources = ResolveSources(localSources);
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await Transfer(async () => TransferSummary.From(await agent.UploadAsync(remoteDirectory, sources, user, ct, progress).ConfigureAwait(false)), "upload").ConfigureAwait(false);
    }

    public async Task<TransferSummary> UploadTarAsync(string id, Stream tar, string remoteDirectory, string? user = null, IProgress<long>? progress = null,
        CancellationToken ct = default)
    {
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await Transfer(async () => TransferSummary.From(await agent.UploadTarAsync(remoteDirectory, tar, user, ct, progress).ConfigureAwait(false)), "upload").ConfigureAwait(false);
    }

    public async Task<TransferSummary> DownloadAsync(string id, string remotePath, string localPath, string? user = null, IProgress<long>? progress = null,
        CancellationToken ct = default)
    {
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await Transfer(async () => TransferSummary.From(await agent.DownloadAsync(remotePath, localPath, user, ct, progress).ConfigureAwait(false)), "download").ConfigureAwait(false);
    }

    public async Task<long> DownloadTarAsync(string id, string remotePath, Stream output, string? user = null, IProgress<long>? progress = null,
        CancellationToken ct = default)
    {
        var agent = await ConnectAgentAsync(id, ct).ConfigureAwait(false);
        return await Transfer(() => agent.DownloadTarAsync(remotePath, output, user, ct, progress), "download").ConfigureAwait(false);
    }

    /// <summary>docker cp naming: <c>dir</c> → entry <c>dir</c>; <c>dir/.</c> → the directory's children.</summary>
    internal static List<TarSource> ResolveSources(IReadOnlyList<string> localSources)
    {
        var sources = new List<TarSource>();
        foreach (var source in localSources)
        {
            var full = Path.GetFullPath(source);
            var exists = File.Exists(full) || Directory.Exists(full) || new FileInfo(full).LinkTarget is not null;
            if (!exists)
                throw new VmsanException(ErrorCode.PathNotFound, $"{source}: no such file or directory.", "Check the local path.");
            if (source == "." || source.EndsWith("/.", StringComparison.Ordinal))
            {
                if (!Directory.Exists(full))
                    throw new VmsanException(ErrorCode.PathNotFound, $"{source}: not a directory.", "Use DIR/. only with a directory.");
                foreach (var child in Directory.EnumerateFileSystemEntries(full).Order(StringComparer.Ordinal))
                    sources.Add(new TarSource(child, Path.GetFileName(child)));
                continue;
            }
            var name = Path.GetFileName(full.TrimEnd('/'));
            if (name.Length == 0)
                throw VmsanException.Invalid($"cannot upload {source} as a whole.", "Upload its content with DIR/. instead.");
            sources.Add(new TarSource(full.TrimEnd('/'), name));
        }
        return sources;
    }

    private static async Task<T> Transfer<T>(Func<Task<T>> action, string what)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (AgentException e) when (e.Code == FilesProtocol.Errors.PathNotFound)
        {
            throw new VmsanException(ErrorCode.PathNotFound, e.Message, "Check the path in the VM (vmsan exec ID -- ls -la DIR).", e);
        }
        catch (AgentException e) when (e.Reason is AgentErrorReason.BadRequest or AgentErrorReason.Rejected or AgentErrorReason.Protocol)
        {
            throw new VmsanException(ErrorCode.TransferFailed, $"{what} failed: {e.Message}{(e.Code is null ? "" : $" ({e.Code})")}",
                e.Code == Agent.Protocol.AgentErrorCodes.PayloadTooLarge ? "Send less at once, or raise the agent's VMSAN_FILES_MAX_UPLOAD_BYTES." :
                e.Code == FilesProtocol.Errors.TooManyTransfers ? "Wait for the running transfers to finish and retry." :
                "Check the paths and the archive; re-run with --verbose.", e);
        }
        catch (TarEntryRejectedException e)
        {
            throw new VmsanException(ErrorCode.TransferFailed, $"{what} refused an unsafe entry from the VM: {e.Message}", "The guest sent a path outside the destination; nothing further was written.", e);
        }
        catch (TarWriteException e)
        {
            throw new VmsanException(ErrorCode.TransferFailed, $"{what} failed writing locally: {e.Message}", "Check the local destination (exists, writable, free space).", e);
        }
        catch (AgentException e)
        {
            throw AgentErrorMap.ToVmsan(e);
        }
    }
}
