using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests.Images;

public enum LayerKind
{
    Plain,
    Gzip,
    Zstd,
}

/// <summary>One tar entry of a fixture layer.</summary>
public sealed record FixtureEntry(string Path, TarEntryType Type = TarEntryType.RegularFile, byte[]? Content = null, string? Link = null,
    UnixFileMode Mode = (UnixFileMode)0x1A4, int Uid = 0, int Gid = 0)
{
    public static FixtureEntry File(string path, string text, int uid = 0, int gid = 0, UnixFileMode mode = (UnixFileMode)0x1A4) =>
        new(path, Content: Encoding.UTF8.GetBytes(text), Uid: uid, Gid: gid, Mode: mode);

    public static FixtureEntry Dir(string path) => new(path, TarEntryType.Directory, Mode: (UnixFileMode)0x1ED);

    public static FixtureEntry Symlink(string path, string target) => new(path, TarEntryType.SymbolicLink, Link: target, Mode: (UnixFileMode)0x1FF);

    public static FixtureEntry Hardlink(string path, string target) => new(path, TarEntryType.HardLink, Link: target);
}

public sealed record Blob(string MediaType, string Digest, long Size)
{
    public JsonObject ToJson(JsonObject? platform = null, string? refName = null)
    {
        var o = new JsonObject { ["mediaType"] = MediaType, ["digest"] = Digest, ["size"] = Size };
        if (platform is not null)
            o["platform"] = platform;
        if (refName is not null)
            o["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = refName };
        return o;
    }
}

/// <summary>
/// Builds OCI image layouts by hand (tar + JSON, written independently of vmsan's own code), so
/// every byte the registry serves is known to the test: layers with whiteouts, opaque
/// directories, hard links and symlinks; gzip, zstd (the zstd CLI) and plain layers; nested indexes.
/// </summary>
public sealed class OciLayout
{
    public const string Manifest = "application/vnd.oci.image.manifest.v1+json";
    public const string Index = "application/vnd.oci.image.index.v1+json";
    private readonly List<JsonObject> _refs = [];

    public OciLayout(string dir)
    {
        Dir = dir;
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        System.IO.File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        WriteIndex();
    }

    public string Dir { get; }

    public string BlobPath(string digest) => Path.Combine(Dir, "blobs", "sha256", digest["sha256:".Length..]);

    public Blob Put(byte[] bytes, string mediaType)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        System.IO.File.WriteAllBytes(BlobPath(digest), bytes);
        return new Blob(mediaType, digest, bytes.Length);
    }

    public static byte[] Tar(IEnumerable<FixtureEntry> entries)
    {
        using var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
            foreach (var e in entries)
            {
                var entry = new PaxTarEntry(e.Type, e.Path) { Mode = e.Mode, Uid = e.Uid, Gid = e.Gid, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1700000000) };
                if (e.Link is not null)
                    entry.LinkName = e.Link;
                if (e.Content is not null)
                    entry.DataStream = new MemoryStream(e.Content);
                w.WriteEntry(entry);
            }
        return ms.ToArray();
    }

    /// <summary>A layer; its diff id (digest of the uncompressed tar) goes into the config.</summary>
    public (Blob Blob, string DiffId) Layer(IEnumerable<FixtureEntry> entries, LayerKind kind, Func<byte[], byte[]>? mangle = null)
    {
        var tar = Tar(entries);
        var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar));
        var (bytes, type) = kind switch
        {
            LayerKind.Gzip => (Gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerKind.Zstd => (Zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
            _ => (tar, "application/vnd.oci.image.layer.v1.tar"),
        };
        return (Put(mangle is null ? bytes : mangle(bytes), type), diffId);
    }

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(data);
        return ms.ToArray();
    }

    private static byte[] Zstd(byte[] data)
    {
        var tmp = Path.GetTempFileName();
        try
        {
            System.IO.File.WriteAllBytes(tmp, data);
            Sh.Check($"zstd -q -f -3 {tmp} -o {tmp}.zst").GetAwaiter().GetResult();
            return System.IO.File.ReadAllBytes(tmp + ".zst");
        }
        finally
        {
            System.IO.File.Delete(tmp);
            System.IO.File.Delete(tmp + ".zst");
        }
    }

    /// <summary>An image manifest over a config (the <c>config</c> object of the image config, and its platform) and layers.</summary>
    public Blob Image(string arch, JsonObject? containerConfig, params (Blob Blob, string DiffId)[] layers)
    {
        var config = new JsonObject
        {
            ["architecture"] = arch,
            ["os"] = "linux",
            ["config"] = containerConfig ?? new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. layers.Select(l => (JsonNode)l.DiffId)]) },
        };
        var cfg = Put(Encoding.UTF8.GetBytes(config.ToJsonString()), "application/vnd.oci.image.config.v1+json");
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = Manifest,
            ["config"] = cfg.ToJson(),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)l.Blob.ToJson())]),
        };
        return Put(Encoding.UTF8.GetBytes(manifest.ToJsonString()), Manifest);
    }

    public Blob MultiPlatform(params (Blob Manifest, string Arch)[] entries)
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = Index,
            ["manifests"] = new JsonArray([.. entries.Select(e => (JsonNode)e.Manifest.ToJson(new JsonObject { ["os"] = "linux", ["architecture"] = e.Arch }))]),
        };
        return Put(Encoding.UTF8.GetBytes(index.ToJsonString()), Index);
    }

    /// <summary>Names a manifest or index in index.json.</summary>
    public void Tag(Blob target, string tag)
    {
        _refs.Add(target.ToJson(refName: tag));
        WriteIndex();
    }

    private void WriteIndex() =>
        System.IO.File.WriteAllText(Path.Combine(Dir, "index.json"), new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray([.. _refs.Select(r => r.DeepClone())]),
        }.ToJsonString());

    /// <summary>
    /// A musl image like alpine's userland, with no shell and no init: musl's dynamic loader
    /// (<c>/lib/ld-musl-x86_64.so.1</c>, Debian's musl package) and one program built with musl-gcc
    /// against it, which prints what runs as PID 1.
    /// </summary>
    public static async Task<List<FixtureEntry>> MuslHello(string workDir)
    {
        var src = Path.Combine(workDir, "musl-hello.c");
        var bin = Path.Combine(workDir, "musl-hello");
        await System.IO.File.WriteAllTextAsync(src, """
            #include <stdio.h>
            int main(void) {
                char comm[64] = "?";
                FILE *f = fopen("/proc/1/comm", "r");
                if (f) { if (!fgets(comm, sizeof comm, f)) comm[0] = 0; fclose(f); }
                printf("hello from musl; pid 1 is %s", comm);
                return 0;
            }
            """);
        await Sh.Check($"musl-gcc -O2 -o {bin} {src}");
        // A dynamic musl binary, as alpine's are (a static one would not need the loader).
        var info = await Sh.Check($"file -L {bin}");
        if (!info.Contains("interpreter /lib/ld-musl-x86_64.so.1", StringComparison.Ordinal))
            throw new InvalidOperationException($"musl-gcc did not build a dynamic musl binary: {info}");
        return
        [
            FixtureEntry.Dir("lib"),
            new FixtureEntry("lib/ld-musl-x86_64.so.1", Content: await System.IO.File.ReadAllBytesAsync("/usr/lib/x86_64-linux-musl/libc.so"), Mode: (UnixFileMode)0x1ED),
            FixtureEntry.Dir("bin"),
            new FixtureEntry("bin/hello", Content: await System.IO.File.ReadAllBytesAsync(bin), Mode: (UnixFileMode)0x1ED),
        ];
    }

    /// <summary>A static busybox (the host's busybox-static) with the applets the tests call, and an unprivileged user.</summary>
    public static IEnumerable<FixtureEntry> Busybox()
    {
        yield return FixtureEntry.Dir("bin");
        yield return new FixtureEntry("bin/busybox", Content: System.IO.File.ReadAllBytes("/bin/busybox"), Mode: (UnixFileMode)0x1ED);
        foreach (var applet in (string[])["sh", "ls", "cat", "echo", "id", "pwd", "env", "sleep", "stat", "readlink", "test", "wc", "sha256sum", "head"])
            yield return FixtureEntry.Symlink("bin/" + applet, "busybox");
        yield return FixtureEntry.Dir("etc");
        yield return FixtureEntry.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
        yield return FixtureEntry.File("etc/group", "root:x:0:\napp:x:1000:\n");
    }
}
