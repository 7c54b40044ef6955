using System.Collections.Concurrent;
using System.Security.Cryptography;
using Vmsan.Core.State;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan.Images.Cache;

/// <summary>Progress of one blob: bytes so far (including what a resumed download already had) of its size.</summary>
public delegate void BlobProgress(string digest, long done, long total);

/// <summary>
/// Content-addressed blobs under <c>blobs/sha256/HEX</c>. A blob is downloaded to <c>HEX.partial</c>
/// while its digest is computed, and renamed to its final name only when digest and size match:
/// a corrupt or interrupted download never shows up as a blob. An interrupted one (network error,
/// killed process) leaves its <c>.partial</c>, and the next attempt resumes from its end with a
/// range request. One lock per blob (flock, so it holds across processes and threads) makes
/// concurrent pulls of the same image download each blob once.
/// </summary>
public sealed class BlobStore
{
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> InProcess = new();
    private readonly string _root;

    public BlobStore(string root)
    {
        _root = root;
        BlobsDir = Path.Combine(root, "blobs", "sha256");
        LocksDir = Path.Combine(root, "locks");
    }

    public string BlobsDir { get; }

    public string LocksDir { get; }

    /// <summary>How many times a broken blob stream is resumed within one call.</summary>
    public int ResumeAttempts { get; init; } = 3;

    public string PathOf(string digest) => Path.Combine(BlobsDir, Digests.Hex(digest));

    public bool Has(string digest) => File.Exists(PathOf(digest));

    /// <summary>Stores bytes already in memory (manifests), verified against their digest.</summary>
    public void Put(string digest, byte[] content)
    {
        var actual = Digests.Of(content);
        if (actual != digest)
            throw ImageErrors.DigestMismatch($"content for {digest}", digest, actual);
        if (Has(digest))
            return;
        Directory.CreateDirectory(BlobsDir);
        AtomicFile.Write(PathOf(digest), content, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    /// <summary>Makes the blob present: returns its path, downloading it through <paramref name="open"/> unless it is cached.</summary>
    public async Task<string> EnsureAsync(Descriptor blob, Func<long, CancellationToken, Task<BlobResponse>> open,
        BlobProgress? progress, CancellationToken ct)
    {
        var hex = Digests.Hex(blob.Digest);
        var final = Path.Combine(BlobsDir, hex);
        if (File.Exists(final))
        {
            progress?.Invoke(blob.Digest, blob.Size, blob.Size);
            return final;
        }
        var gate = InProcess.GetOrAdd(hex, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            Directory.CreateDirectory(BlobsDir);
            // flock blocks a thread; the in-process gate above keeps that to one per blob.
            using var fileLock = await Task.Run(() => FileLock.Acquire(Path.Combine(LocksDir, hex + ".lock"), TimeSpan.FromHours(1)), ct)
                .ConfigureAwait(false);
            if (File.Exists(final))
            {
                progress?.Invoke(blob.Digest, blob.Size, blob.Size);
                return final;
            }
            await DownloadAsync(blob, Path.Combine(BlobsDir, hex + ".partial"), final, open, progress, ct).ConfigureAwait(false);
            return final;
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task DownloadAsync(Descriptor blob, string partial, string final, Func<long, CancellationToken, Task<BlobResponse>> open,
        BlobProgress? progress, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var file = new FileStream(partial, new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            Options = FileOptions.Asynchronous,
            BufferSize = 0,
        });
        var buffer = new byte[256 * 1024];
        long have = 0;
        if (file.Length > 0 && file.Length <= blob.Size)
        {
            // Resume: the bytes already there count toward the digest.
            int n;
            while ((n = await file.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                have += n;
            }
        }
        else
            file.SetLength(0);

        var attempt = 0;
        while (true)
        {
            try
            {
                using var resp = await open(have, ct).ConfigureAwait(false);
                if (resp.Offset != have)
                {
                    // The server ignored the range: start over.
                    file.SetLength(0);
                    file.Position = 0;
                    have = 0;
                    hash.GetHashAndReset();
                }
                file.Position = have;
                int n;
                while ((n = await resp.Content.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    if (have + n > blob.Size)
                        throw Fail(partial, ImageErrors.DigestMismatch($"blob {blob.Digest}", $"{blob.Size} bytes", "more"));
                    await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    hash.AppendData(buffer, 0, n);
                    have += n;
                    progress?.Invoke(blob.Digest, have, blob.Size);
                }
                break;
            }
            catch (IOException) when (++attempt <= ResumeAttempts && !ct.IsCancellationRequested)
            {
                // The stream broke mid-blob: keep what arrived and ask for the rest.
                await file.FlushAsync(ct).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), ct).ConfigureAwait(false);
            }
        }
        if (have < blob.Size)
            throw Fail(partial, ImageErrors.Bad($"blob {blob.Digest} is truncated: the source sent {have} of {blob.Size} bytes; nothing was kept."));
        var actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        if (actual != blob.Digest)
            throw Fail(partial, ImageErrors.DigestMismatch($"blob {blob.Digest}", blob.Digest, actual));
        await file.FlushAsync(ct).ConfigureAwait(false);
        file.Flush(flushToDisk: true);
        File.SetUnixFileMode(file.SafeFileHandle, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(partial, final, overwrite: true);
    }

    private static Exception Fail(string partial, Exception ex)
    {
        try
        {
            File.Delete(partial);
        }
        catch (IOException)
        {
        }
        return ex;
    }

    /// <summary>Removes every blob not in <paramref name="keep"/>, and stale partial downloads and locks.</summary>
    public (int Removed, long Bytes) Prune(IReadOnlySet<string> keep)
    {
        var removed = 0;
        long bytes = 0;
        if (!Directory.Exists(BlobsDir))
            return (0, 0);
        foreach (var f in Directory.EnumerateFiles(BlobsDir))
        {
            var name = Path.GetFileName(f);
            var hex = name.EndsWith(".partial", StringComparison.Ordinal) ? name[..^8] : name;
            if (keep.Contains("sha256:" + hex) && hex == name)
                continue;
            var lockPath = Path.Combine(LocksDir, hex + ".lock");
            try
            {
                // Skip blobs a pull is downloading right now.
                using var l = FileLock.Acquire(lockPath, TimeSpan.Zero);
                bytes += new FileInfo(f).Length;
                File.Delete(f);
                removed++;
            }
            catch (Core.Errors.VmsanException)
            {
            }
        }
        return (removed, bytes);
    }
}
