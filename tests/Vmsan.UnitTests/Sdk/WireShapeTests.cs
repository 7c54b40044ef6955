using System.Reflection;
using Wire = Vmsan.Agent.Protocol;

namespace Vmsan.UnitTests.Sdk;

/// <summary>
/// The SDK's exec and transfer types mirror the agent's wire DTOs field for field (name, type, order of the primary
/// constructor), so a field added to one side without the other fails here instead of being dropped silently on the
/// way between the SDK and the agent. (SdkBoundaryTests checks that the values make it across.)
/// </summary>
public sealed class WireShapeTests
{
    public static TheoryData<Type, Type> Pairs() => new()
    {
        { typeof(ExecRequest), typeof(Wire.ExecRequest) },
        { typeof(ExecInfo), typeof(Wire.ExecInfo) },
        { typeof(TransferSummary), typeof(Wire.Files.TransferSummary) },
        // The SDK's result adds the pid the stream learned when the exec started; the rest is the wire's exit frame.
        { typeof(ExecResult), typeof(Wire.ExecExit) },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void The_sdk_type_carries_the_wire_types_fields(Type sdk, Type wire)
    {
        var sdkFields = Shape(sdk);
        var wireFields = Shape(wire);
        var extra = sdk == typeof(ExecResult) ? new[] { ("Pid", typeof(int?).ToString()) } : [];

        Assert.Equal(wireFields.Concat(extra), sdkFields);
    }

    /// <summary>The primary constructor's parameters as (name, type) pairs, nullability of reference types aside.</summary>
    private static List<(string, string)> Shape(Type t)
    {
        var ctor = t.GetConstructors(BindingFlags.Public | BindingFlags.Instance)
            .Where(c => c.GetParameters() is not [{ } only] || only.ParameterType != t)
            .MaxBy(c => c.GetParameters().Length)!;
        var shape = ctor.GetParameters().Select(p => (p.Name!, p.ParameterType.ToString())).ToList();
        Assert.NotEmpty(shape);
        return shape;
    }
}
