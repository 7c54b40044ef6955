using System.Text.RegularExpressions;
using Vmsan.Cli.Output;
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

    [Theory]
    [InlineData(2, 130, "error [INTERRUPTED]: Interrupted by SIGINT.\n")]
    [InlineData(15, 143, "error [INTERRUPTED]: Interrupted by SIGTERM.\n")]
    public void An_interruption_is_one_line_on_stderr_and_exits_128_plus_the_signal(int signal, int exit, string stderr)
    {
        using var o = new StringWriter();
        using var e = new StringWriter();

        Assert.Equal(exit, new CliConsole(o, e).Interrupted(signal));
        Assert.Equal(stderr, e.ToString().ReplaceLineEndings("\n"));
        Assert.Equal("", o.ToString());
    }

    [Fact]
    public void An_interruption_with_json_is_an_INTERRUPTED_error_document_on_stdout()
    {
        using var o = new StringWriter();
        using var e = new StringWriter();

        Assert.Equal(130, new CliConsole(o, e) { Json = true }.Interrupted(2));
        using var doc = System.Text.Json.JsonDocument.Parse(o.ToString());
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("INTERRUPTED", error.GetProperty("code").GetString());
        Assert.Equal("Interrupted by SIGINT.", error.GetProperty("message").GetString());
        Assert.Equal("", e.ToString());
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
