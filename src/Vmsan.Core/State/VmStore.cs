using System.Security.Cryptography;
using System.Text.Json;
using Vmsan.Core.Errors;

namespace Vmsan.Core.State;

/// <summary>
/// The on-disk registry of VMs: one directory per VM with <c>vm.json</c>. Every write is
/// temp-file + fsync + rename, so a reader sees the old or the new file, never half of one.
/// Mutations hold the VM's flock; id and slot allocation hold the global one.
/// </summary>
public sealed class VmStore
{
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);
    public const int MaxSlots = 16384;

    public VmStore(VmsanPaths paths) => Paths = paths;

    /// <summary>Mode of every file vmsan keeps for a VM (state, secrets, locks, disk, console): root's alone.</summary>
    public const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Mode of a VM's directory (the supervisor adds group search for the VMM's group when QEMU runs unprivileged).</summary>
    public const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// The directory of all VMs: searchable (an unprivileged VMM reopens its disk by path through it) but not
    /// listable by anyone but root, whatever VMSAN_HOME's own mode is.
    /// </summary>
    public const UnixFileMode VmsDirMode = PrivateDir | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private void CreatePrivateVmsDir()
    {
        Directory.CreateDirectory(Paths.VmsDir);
        if (File.GetUnixFileMode(Paths.VmsDir) != VmsDirMode)
            File.SetUnixFileMode(Paths.VmsDir, VmsDirMode);
    }

    public VmsanPaths Paths { get; }

    public static bool IsValidId(string id) =>
        id.Length == 11 && id.StartsWith("vm-", StringComparison.Ordinal) && id[3..].All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    public static string NewId() => "vm-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    public FileLock LockGlobal() => FileLock.Acquire(Paths.GlobalLock, LockTimeout);

    /// <summary>
    /// The per-VM lock. VM_NOT_FOUND when the VM's directory does not exist: the lock never creates
    /// it (a stop of an unknown id must leave nothing behind that a later rm would "remove").
    /// A VM removed while the caller waited leaves it holding the lock of a deleted file: callers
    /// load the state under the lock and find nothing.
    /// </summary>
    public FileLock LockVm(string id) =>
        TryLockVm(id) ?? throw VmsanException.NotFound(id);

    /// <summary>The per-VM lock, or null when the VM's directory is gone (never recreated).</summary>
    public FileLock? TryLockVm(string id) => FileLock.AcquireIfDirectoryExists(Paths.VmLock(id), LockTimeout);

    public bool Exists(string id) => IsValidId(id) && File.Exists(Paths.VmStateFile(id));

    public VmRecord? TryLoad(string id)
    {
        if (!IsValidId(id))
            return null;
        var file = Paths.VmStateFile(id);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            var rec = JsonSerializer.Deserialize(bytes, StateJsonContext.Default.VmRecord);
            if (rec is null)
                throw new JsonException("empty");
            if (rec.SchemaVersion > VmRecord.CurrentSchemaVersion)
                throw new VmsanException(ErrorCode.StateCorrupt, $"{file} has schemaVersion {rec.SchemaVersion}, newer than this vmsan understands.",
                    "Upgrade vmsan.");
            return rec;
        }
        catch (JsonException ex)
        {
            throw new VmsanException(ErrorCode.StateCorrupt, $"State file {file} is unreadable: {ex.Message}",
                $"Run `vmsan rm -f {id}` to discard the VM.", ex);
        }
    }

    public VmRecord Load(string id) => TryLoad(id) ?? throw VmsanException.NotFound(id);

    public IReadOnlyList<string> ListIds()
    {
        if (!Directory.Exists(Paths.VmsDir))
            return [];
        return Directory.EnumerateDirectories(Paths.VmsDir)
            .Select(Path.GetFileName)
            .Where(n => n is not null && IsValidId(n) && File.Exists(Paths.VmStateFile(n)))
            .Select(n => n!)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    public void Save(VmRecord record)
    {
        var rec = record with { UpdatedAt = DateTimeOffset.UtcNow };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(rec, StateJsonContext.Default.VmRecord);
        // Private: the state names the VM's processes, addresses and files, and no one but root needs it.
        AtomicFile.Write(Paths.VmStateFile(rec.Id), bytes, PrivateFile);
    }

    public void SaveSecrets(string id, VmSecrets secrets)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(secrets, StateJsonContext.Default.VmSecrets);
        AtomicFile.Write(Path.Combine(Paths.VmDir(id), "secrets.json"), bytes, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    public VmSecrets LoadSecrets(string id)
    {
        var file = Path.Combine(Paths.VmDir(id), "secrets.json");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(file), StateJsonContext.Default.VmSecrets)
                   ?? throw new JsonException("empty");
        }
        catch (Exception ex) when (ex is IOException or JsonException)
        {
            throw new VmsanException(ErrorCode.StateCorrupt, $"Cannot read {file}: {ex.Message}", $"Run `vmsan rm -f {id}` and create a new VM.", ex);
        }
    }

    /// <summary>
    /// Reserves a fresh id and the lowest free network slot. Call under <see cref="LockGlobal"/>;
    /// the reservation is the VM directory itself, so a crash between here and the first
    /// <see cref="Save"/> leaves a directory that <c>doctor</c> removes.
    /// </summary>
    public (string Id, int Slot) Reserve()
    {
        CreatePrivateVmsDir();
        var used = new HashSet<int>();
        foreach (var dir in Directory.EnumerateDirectories(Paths.VmsDir))
        {
            var slotFile = Path.Combine(dir, "slot");
            if (File.Exists(slotFile) && int.TryParse(File.ReadAllText(slotFile).Trim(), out var s))
                used.Add(s);
        }
        var slot = Enumerable.Range(0, MaxSlots).FirstOrDefault(s => !used.Contains(s), -1);
        if (slot < 0)
            throw new VmsanException(ErrorCode.NoFreeSlot, $"All {MaxSlots} network slots are in use.", "Remove VMs you no longer need with `vmsan rm`.");
        string id;
        do
        {
            id = NewId();
        }
        while (Directory.Exists(Paths.VmDir(id)));
        Directory.CreateDirectory(Paths.VmDir(id));
        File.SetUnixFileMode(Paths.VmDir(id), PrivateDir);
        AtomicFile.Write(Path.Combine(Paths.VmDir(id), "slot"), System.Text.Encoding.ASCII.GetBytes(slot.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            PrivateFile);
        return (id, slot);
    }

    public void Delete(string id)
    {
        var dir = Paths.VmDir(id);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }
}
