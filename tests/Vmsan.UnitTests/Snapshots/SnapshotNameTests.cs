using Vmsan.Core.Errors;
using Vmsan.Snapshots;

namespace Vmsan.UnitTests.Snapshots;

public class SnapshotNameTests
{
    [Theory]
    [InlineData("warm-python")]
    [InlineData("a")]
    [InlineData("v1.2_x")]
    public void Ordinary_names_are_accepted(string name) => SnapshotStore.ValidateName(name);

    [Theory]
    [InlineData("")]
    [InlineData("Warm")]
    [InlineData("-lead")]
    [InlineData("a/b")]
    [InlineData("../x")]
    [InlineData("snap-0123abcd")]
    public void Names_that_are_paths_ids_or_odd_are_invalid_arguments(string name)
    {
        var ex = Assert.Throws<VmsanException>(() => SnapshotStore.ValidateName(name));
        Assert.Equal(ErrorCode.InvalidArgument, ex.Code);
    }

    [Fact]
    public void Names_longer_than_63_characters_are_refused() =>
        Assert.Throws<VmsanException>(() => SnapshotStore.ValidateName(new string('a', 64)));

    [Fact]
    public void An_unknown_snapshot_is_SNAPSHOT_NOT_FOUND()
    {
        var store = new SnapshotStore(new Vmsan.Core.VmsanPaths(Path.Combine(Path.GetTempPath(), "vmsan-none-" + Guid.NewGuid().ToString("N")), "/nonexistent"));
        Assert.Equal(ErrorCode.SnapshotNotFound, Assert.Throws<VmsanException>(() => store.Find("nope")).Code);
        Assert.Equal(ErrorCode.SnapshotNotFound, Assert.Throws<VmsanException>(() => store.Find("Bad/Name")).Code);
    }
}
