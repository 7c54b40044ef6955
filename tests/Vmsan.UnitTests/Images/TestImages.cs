using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Vmsan.Images.Model;

namespace Vmsan.UnitTests.Images;

/// <summary>Builds layers, configs, manifests and indexes by hand (tar + JSON), the way the spec defines them.</summary>
internal static class TestImages
{
    public sealed record Layer(byte[] Blob, string MediaType)
    {
        public string Digest => Digests.Of(Blob);
    }

    public static byte[] Tar(Action<TarWriter> write)
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
            write(w);
        return ms.ToArray();
    }

    public static void File(this TarWriter w, string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4, int uid = 0, int gid = 0)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)), Mode = mode, Uid = uid, Gid = gid,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        };
        w.WriteEntry(e);
    }

    public static void Dir(this TarWriter w, string name, UnixFileMode mode = (UnixFileMode)0x1ED) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = mode });

    public static void Symlink(this TarWriter w, string name, string target) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF });

    public static void HardLink(this TarWriter w, string name, string target) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target });

    public static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(data);
        return ms.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(data).ToArray();
    }

    public static byte[] Config(string os = "linux", string arch = "amd64", string extra = "") =>
        Encoding.UTF8.GetBytes($"{{\"architecture\":\"{arch}\",\"os\":\"{os}\",\"config\":{{{extra}}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}");

    public static byte[] Manifest(byte[] config, IEnumerable<Layer> layers, string mediaType = MediaTypes.OciManifest)
    {
        var ls = string.Join(',', layers.Select(l => $"{{\"mediaType\":\"{l.MediaType}\",\"digest\":\"{l.Digest}\",\"size\":{l.Blob.Length}}}"));
        var cfgType = mediaType == MediaTypes.DockerManifest ? MediaTypes.DockerConfig : MediaTypes.OciConfig;
        return Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"{mediaType}\",\"config\":{{\"mediaType\":\"{cfgType}\",\"digest\":\"{Digests.Of(config)}\",\"size\":{config.Length}}},\"layers\":[{ls}]}}");
    }

    public static byte[] Index(params (byte[] Manifest, string Platform)[] entries)
    {
        var ms = string.Join(',', entries.Select(e =>
        {
            var p = e.Platform.Split('/');
            return $"{{\"mediaType\":\"{MediaTypes.OciManifest}\",\"digest\":\"{Digests.Of(e.Manifest)}\",\"size\":{e.Manifest.Length},\"platform\":{{\"os\":\"{p[0]}\",\"architecture\":\"{p[1]}\"}}}}";
        }));
        return Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciIndex}\",\"manifests\":[{ms}]}}");
    }

    /// <summary>Puts an image (config, layers, manifest under <paramref name="tag"/>) into the fake registry.</summary>
    public static byte[] Publish(FakeRegistry reg, string tag, byte[] config, params Layer[] layers)
    {
        var manifest = Manifest(config, layers);
        reg.Blobs[Digests.Of(config)] = config;
        foreach (var l in layers)
            reg.Blobs[l.Digest] = l.Blob;
        reg.Manifests[tag] = (MediaTypes.OciManifest, manifest);
        reg.Manifests[Digests.Of(manifest)] = (MediaTypes.OciManifest, manifest);
        return manifest;
    }
}
