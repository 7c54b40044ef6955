using CsCheck;
using System.Collections.Concurrent;
using System.Text.Json;
using Vmsan.Core;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.State;

public sealed class VmStoreTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly VmStore _store;

    public VmStoreTests() => _store = new VmStore(new VmsanPaths(_tmp.Combine("home"), _tmp.Combine("assets")));

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void A_saved_record_loads_back_equal()
    {
        var record = Records.Sample();

        _store.Save(record);
        var loaded = _store.Load(record.Id);

        Assert.Equal(record, loaded with { UpdatedAt = record.UpdatedAt });
        Assert.True(loaded.UpdatedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.True(_store.Exists(record.Id));
    }

    [Fact]
    public void The_state_file_is_camel_case_json_with_a_schema_version()
    {
        var record = Records.Sample() with { Error = null };

        _store.Save(record);

        using var doc = JsonDocument.Parse(File.ReadAllBytes(_store.Paths.VmStateFile(record.Id)));
        var root = doc.RootElement;
        Assert.Equal(VmRecord.CurrentSchemaVersion, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("running", root.GetProperty("status").GetString());
        Assert.Equal(768, root.GetProperty("memoryMib").GetInt32());
        Assert.Equal("vmsan-1a2b3c4d", root.GetProperty("network").GetProperty("netns").GetString());
        Assert.Equal(101, root.GetProperty("vmm").GetProperty("pid").GetInt32());
        Assert.False(root.TryGetProperty("error", out _), "nulls are omitted");
        Assert.DoesNotContain(root.EnumerateObject(), p => char.IsUpper(p.Name[0]));
    }

    [Fact]
    public void The_state_file_is_private_to_its_owner()
    {
        _store.Save(Records.Sample());

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_store.Paths.VmStateFile("vm-1a2b3c4d")));
    }

    [Fact]
    public void A_reserved_vm_directory_its_files_and_its_lock_are_private_and_the_vms_directory_is_not_listable()
    {
        // A home that is world-readable, as a careless VMSAN_HOME may be: nothing under it may follow suit.
        Directory.CreateDirectory(_store.Paths.Home);
        File.SetUnixFileMode(_store.Paths.Home, (UnixFileMode)0x1FF);

        var (id, _) = _store.Reserve();
        _store.Save(Records.Sample() with { Id = id });
        _store.SaveSecrets(id, new VmSecrets("t"));
        using (_store.LockVm(id))
        {
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_store.Paths.VmDir(id)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(_store.Paths.VmsDir));
        var files = Directory.GetFiles(_store.Paths.VmDir(id), "*", new EnumerationOptions { AttributesToSkip = 0 });
        Assert.Equal([".lock", "secrets.json", "slot", "vm.json"], files.Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray());
        Assert.All(files, f => Assert.True(File.GetUnixFileMode(f) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{f} is {File.GetUnixFileMode(f)}"));
    }

    [Fact]
    public void A_newer_schema_version_is_StateCorrupt()
    {
        var record = Records.Sample() with { SchemaVersion = VmRecord.CurrentSchemaVersion + 1 };
        _store.Save(record);

        var ex = ErrorAssert.Throws(ErrorCode.StateCorrupt, () => _store.Load(record.Id));

        Assert.Contains("schemaVersion", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("{\"id\":\"vm-1a2b3c4d\"}")]
    [InlineData("{\"id\":\"vm-1a2b3c4d\",\"status\":\"exploded\"}")]
    public void Unreadable_json_is_StateCorrupt_with_a_fix(string content)
    {
        Directory.CreateDirectory(_store.Paths.VmDir("vm-1a2b3c4d"));
        File.WriteAllText(_store.Paths.VmStateFile("vm-1a2b3c4d"), content);

        var ex = ErrorAssert.Throws(ErrorCode.StateCorrupt, () => _store.Load("vm-1a2b3c4d"));

        Assert.Contains("vm-1a2b3c4d", ex.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_a_missing_vm_is_VmNotFound()
    {
        ErrorAssert.Throws(ErrorCode.VmNotFound, () => _store.Load("vm-00000000"));
        Assert.Null(_store.TryLoad("vm-00000000"));
        Assert.False(_store.Exists("vm-00000000"));
    }

    [Fact]
    public void Locking_an_unknown_vm_is_VmNotFound_and_creates_nothing()
    {
        Directory.CreateDirectory(_store.Paths.VmsDir);

        ErrorAssert.Throws(ErrorCode.VmNotFound, () => _store.LockVm("vm-0000abcd").Dispose());

        Assert.False(Directory.Exists(_store.Paths.VmDir("vm-0000abcd")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_store.Paths.VmsDir));
    }

    [Theory]
    [InlineData("vm-1a2b3c4d", true)]
    [InlineData("vm-00000000", true)]
    [InlineData("vm-ffffffff", true)]
    [InlineData("vm-1A2B3C4D", false)]
    [InlineData("vm-1a2b3c4", false)]
    [InlineData("vm-1a2b3c4d5", false)]
    [InlineData("vm-1a2b3c4g", false)]
    [InlineData("xm-1a2b3c4d", false)]
    [InlineData("vm_1a2b3c4d", false)]
    [InlineData("vm-../../..", false)]
    [InlineData("vm-1a2b/c4d", false)]
    [InlineData("", false)]
    public void IsValidId_accepts_only_vm_dash_8_lowercase_hex(string id, bool valid)
    {
        Assert.Equal(valid, VmStore.IsValidId(id));
    }

    [Fact]
    public void Invalid_ids_never_touch_the_disk()
    {
        Assert.Null(_store.TryLoad("vm-../../x"));
        Assert.False(_store.Exists("../vms"));
    }

    [Fact]
    public void NewId_is_always_a_valid_id()
    {
        Gen.Int.Sample(_ => VmStore.IsValidId(VmStore.NewId()));
    }

    [Fact]
    public void ListIds_returns_only_valid_vm_directories_with_a_state_file_in_order()
    {
        // Arrange
        _store.Save(Records.Sample("vm-bbbbbbbb"));
        _store.Save(Records.Sample("vm-aaaaaaaa"));
        Directory.CreateDirectory(_store.Paths.VmDir("vm-cccccccc")); // a reservation: no vm.json yet
        Directory.CreateDirectory(Path.Combine(_store.Paths.VmsDir, "junk"));
        Directory.CreateDirectory(Path.Combine(_store.Paths.VmsDir, "vm-ZZZZZZZZ"));
        File.WriteAllText(Path.Combine(_store.Paths.VmsDir, "junk", "vm.json"), "{}");
        File.WriteAllText(Path.Combine(_store.Paths.VmsDir, "vm-dddddddd"), "a file, not a directory");

        // Act
        var ids = _store.ListIds();

        // Assert
        Assert.Equal(["vm-aaaaaaaa", "vm-bbbbbbbb"], ids);
    }

    [Fact]
    public void ListIds_of_a_fresh_home_is_empty()
    {
        Assert.Empty(_store.ListIds());
    }

    [Fact]
    public void Reserve_creates_the_vm_directory_and_takes_the_lowest_free_slot()
    {
        var first = _store.Reserve();
        var second = _store.Reserve();
        var third = _store.Reserve();
        _store.Delete(second.Id);

        var fourth = _store.Reserve();

        Assert.Equal([0, 1, 2, 1], new[] { first.Slot, second.Slot, third.Slot, fourth.Slot });
        Assert.True(Directory.Exists(_store.Paths.VmDir(fourth.Id)));
        Assert.Equal("1", File.ReadAllText(Path.Combine(_store.Paths.VmDir(fourth.Id), "slot")));
        Assert.True(VmStore.IsValidId(fourth.Id));
    }

    [Fact]
    public void Reserve_gives_distinct_ids_and_slots_under_concurrency()
    {
        // Arrange
        const int threads = 16;
        var results = new ConcurrentBag<(string Id, int Slot)>();
        using var start = new Barrier(threads);

        // Act: every thread takes the global lock, as VmsanClient.CreateAsync does.
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            using (_store.LockGlobal())
                results.Add(_store.Reserve());
        })).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());

        // Assert
        Assert.Equal(threads, results.Select(r => r.Id).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, threads), results.Select(r => r.Slot).Order());
        Assert.Equal(threads, Directory.GetDirectories(_store.Paths.VmsDir).Length);
    }

    [Fact]
    public void Secrets_round_trip_in_a_0600_file()
    {
        _store.SaveSecrets("vm-1a2b3c4d", new VmSecrets(new string('f', 64)));

        var secrets = _store.LoadSecrets("vm-1a2b3c4d");

        Assert.Equal(new string('f', 64), secrets.Token);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite,
            File.GetUnixFileMode(Path.Combine(_store.Paths.VmDir("vm-1a2b3c4d"), "secrets.json")));
    }

    [Fact]
    public void The_token_never_lands_in_the_state_file()
    {
        _store.Save(Records.Sample());
        _store.SaveSecrets("vm-1a2b3c4d", new VmSecrets("feedface"));

        Assert.DoesNotContain("feedface", File.ReadAllText(_store.Paths.VmStateFile("vm-1a2b3c4d")), StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_secrets_are_StateCorrupt_with_a_fix()
    {
        Directory.CreateDirectory(_store.Paths.VmDir("vm-1a2b3c4d"));

        ErrorAssert.Throws(ErrorCode.StateCorrupt, () => _store.LoadSecrets("vm-1a2b3c4d"));
    }

    [Fact]
    public void Delete_removes_the_directory_and_tolerates_a_missing_one()
    {
        _store.Save(Records.Sample());

        _store.Delete("vm-1a2b3c4d");
        _store.Delete("vm-1a2b3c4d");

        Assert.False(Directory.Exists(_store.Paths.VmDir("vm-1a2b3c4d")));
        Assert.Null(_store.TryLoad("vm-1a2b3c4d"));
    }
}
