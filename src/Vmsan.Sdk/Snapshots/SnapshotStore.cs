using System.Text.Json;
using System.Text.RegularExpressions;
using Vmsan.Core;
using Vmsan.Core.Errors;
using Vmsan.Core.State;

namespace Vmsan.Snapshots;

/// <summary>
/// Snapshots on disk: <c>snapshots/snap-XXXXXXXX/</c>, each made in a <c>.tmp-…</c> directory and renamed into
/// place when complete, so a listed snapshot is always whole. Names are unique; ids are random.
/// </summary>
internal sealed partial class SnapshotStore(VmsanPaths paths)
{
    [GeneratedRegex("^snap-[0-9a-f]{8}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^boot-[0-9a-f]{16}$")]
    private static partial Regex BootIdPattern();

    public static bool IsValidId(string s) => IdPattern().IsMatch(s);

    /// <summary>A boot snapshot's id (<see cref="BootSnapshotKey"/>): <c>boot-</c> and 16 hex digits.</summary>
    public static bool IsBootId(string s) => BootIdPattern().IsMatch(s);

    public static void ValidateName(string name)
    {
        if (!NamePattern().IsMatch(name) || IsValidId(name))
            throw VmsanException.Invalid($"'{name}' is not a valid snapshot name.",
                "Use 1-63 characters: lowercase letters, digits, '.', '_', '-', starting with a letter or digit (and not shaped like snap-XXXXXXXX).");
    }

    public IReadOnlyList<SnapshotManifest> List()
    {
        var list = new List<SnapshotManifest>();
        if (!Directory.Exists(paths.SnapshotsDir))
            return list;
        foreach (var dir in Directory.EnumerateDirectories(paths.SnapshotsDir))
        {
            var name = Path.GetFileName(dir);
            if (!IsValidId(name))
                continue;
            var m = TryLoad(dir);
            if (m is not null)
                list.Add(m);
        }
        return list.OrderBy(m => m.CreatedAt).ToList();
    }

    /// <summary>
    /// The boot snapshots warm creates resume from (<c>snapshots/boot-KEY/</c>): never in <see cref="List"/>, so never
    /// in <c>snapshot list</c>; <c>snapshot prune</c> removes stale ones.
    /// </summary>
    public IReadOnlyList<SnapshotManifest> ListBoot()
    {
        var list = new List<SnapshotManifest>();
        if (!Directory.Exists(paths.SnapshotsDir))
            return list;
        foreach (var dir in Directory.EnumerateDirectories(paths.SnapshotsDir))
            if (IsBootId(Path.GetFileName(dir)) && TryLoad(dir) is { } m)
                list.Add(m);
        return list.OrderBy(m => m.CreatedAt).ToList();
    }

    /// <summary>The complete boot snapshot with this id, or null (none yet, or one left half-written is never renamed into place).</summary>
    public SnapshotManifest? FindBoot(string bootId) =>
        IsBootId(bootId) && TryLoad(paths.SnapshotDir(bootId)) is { } m && m.Id == bootId ? m : null;

    /// <summary>Held by the one create that builds a boot snapshot; others boot cold meanwhile instead of waiting.</summary>
    public string BootLockPath(string bootId) => Path.Combine(paths.SnapshotsDir, $".{bootId}.lock");

    private static SnapshotManifest? TryLoad(string dir)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(dir, "snapshot.json")), StateJsonContext.Default.SnapshotManifest);
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>By name or id; SNAPSHOT_NOT_FOUND otherwise.</summary>
    public SnapshotManifest Find(string nameOrId)
    {
        if (!IsValidId(nameOrId) && !NamePattern().IsMatch(nameOrId))
            throw new VmsanException(ErrorCode.SnapshotNotFound, $"'{nameOrId}' is not a snapshot name or id.", "Run `vmsan snapshot list`.");
        return List().FirstOrDefault(m => m.Id == nameOrId || m.Name == nameOrId)
               ?? throw new VmsanException(ErrorCode.SnapshotNotFound, $"No snapshot named '{nameOrId}'.", "Run `vmsan snapshot list` to see the snapshots that exist.");
    }

    public static string LoadToken(string snapshotDir) =>
        JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(snapshotDir, "secrets.json")), StateJsonContext.Default.VmSecrets)!.Token;

    public static void WriteManifest(string dir, SnapshotManifest m) =>
        File.WriteAllText(Path.Combine(dir, "snapshot.json"), JsonSerializer.Serialize(m, StateJsonContext.Default.SnapshotManifest));

    public static void WriteToken(string dir, string token)
    {
        var path = Path.Combine(dir, "secrets.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new VmSecrets(token), StateJsonContext.Default.VmSecrets));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>Temp directories whose creator is gone (killed mid-snapshot): removed.</summary>
    public void RemoveAbandonedTemps()
    {
        if (!Directory.Exists(paths.SnapshotsDir))
            return;
        foreach (var dir in Directory.EnumerateDirectories(paths.SnapshotsDir, ".tmp-*"))
        {
            // .tmp-snap-XXXXXXXX-PID
            var parts = Path.GetFileName(dir).Split('-');
            if (parts.Length == 4 && int.TryParse(parts[3], out var pid) && Directory.Exists($"/proc/{pid}"))
                continue;
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        }
    }
}
