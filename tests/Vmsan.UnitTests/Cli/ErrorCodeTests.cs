using System.Text.RegularExpressions;
using Vmsan.Core.Errors;

namespace Vmsan.UnitTests.Cli;

public class ErrorCodeTests
{
    [Theory]
    [InlineData(ErrorCode.VmNotFound, "VM_NOT_FOUND")]
    [InlineData(ErrorCode.InvalidArgument, "INVALID_ARGUMENT")]
    [InlineData(ErrorCode.KvmUnavailable, "KVM_UNAVAILABLE")]
    [InlineData(ErrorCode.VmmFailed, "VMM_FAILED")]
    [InlineData(ErrorCode.StateCorrupt, "STATE_CORRUPT")]
    [InlineData(ErrorCode.NoFreeSlot, "NO_FREE_SLOT")]
    [InlineData(ErrorCode.VmBusy, "VM_BUSY")]
    [InlineData(ErrorCode.Internal, "INTERNAL")]
    [InlineData(ErrorCode.QemuNotFound, "QEMU_NOT_FOUND")]
    public void ToWire_gives_the_upper_snake_case_name(ErrorCode code, string wire)
    {
        Assert.Equal(wire, code.ToWire());
    }

    [Fact]
    public void Every_code_has_a_distinct_well_formed_wire_name()
    {
        var names = Enum.GetValues<ErrorCode>().Select(c => c.ToWire()).ToList();

        Assert.All(names, n => Assert.Matches(new Regex("^[A-Z]+(_[A-Z]+)*$"), n));
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Fact]
    public void Helper_constructors_carry_their_code_and_a_fix()
    {
        var notFound = VmsanException.NotFound("vm-00000000");
        var invalid = VmsanException.Invalid("bad");

        Assert.Equal(ErrorCode.VmNotFound, notFound.Code);
        Assert.Contains("vm-00000000", notFound.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(notFound.Fix));
        Assert.Equal(ErrorCode.InvalidArgument, invalid.Code);
        Assert.False(string.IsNullOrWhiteSpace(invalid.Fix));
    }
}
