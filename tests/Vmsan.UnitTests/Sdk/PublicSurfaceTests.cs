using System.Reflection;

namespace Vmsan.UnitTests.Sdk;

/// <summary>
/// The SDK is the product's boundary: what a library user can see of Vmsan.Sdk (public types, their public and
/// protected members, base types and interfaces) mentions only types of the SDK itself or of .NET, never a type
/// of another vmsan assembly (Core, Network, Images, Vmm, Agent.*, Files, Interop). The package ships those
/// assemblies only as implementation (runtime assets), so a signature that named one could not be compiled against.
/// </summary>
public sealed class PublicSurfaceTests
{
    private static readonly Assembly Sdk = typeof(VmsanClient).Assembly;

    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    [Fact]
    public void No_public_signature_of_the_sdk_mentions_a_type_of_another_vmsan_assembly()
    {
        var leaks = PublicSignatures()
            .SelectMany(s => s.Types.SelectMany(Flatten).Where(IsOtherVmsanAssembly).Select(t => $"{s.Where} -> {t.FullName} ({t.Assembly.GetName().Name})"))
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.True(leaks.Count == 0, "Vmsan.Sdk's public surface leaks other assemblies' types:\n" + string.Join("\n", leaks));
    }

    [Fact]
    public void The_scan_sees_the_surface_it_checks()
    {
        // Guards the test above against a walk that silently visits nothing: known members and nested generic
        // arguments are seen, and a type of another vmsan assembly is recognised as one.
        var all = PublicSignatures().ToList();
        Assert.Contains(all, s => s.Where == "Vmsan.VmsanClient.ExecAsync");
        Assert.Contains(all.Where(s => s.Where == "Vmsan.VmsanClient.ListAsync").SelectMany(s => s.Types.SelectMany(Flatten)), t => t == typeof(VmInfo));
        Assert.True(all.Count > 150, $"only {all.Count} signatures seen");
        Assert.True(IsOtherVmsanAssembly(typeof(Vmsan.Core.VmsanPaths)));
        Assert.True(IsOtherVmsanAssembly(typeof(Vmsan.Network.Policy.NetworkPolicy)));
        Assert.False(IsOtherVmsanAssembly(typeof(VmsanClient)));
        Assert.False(IsOtherVmsanAssembly(typeof(Task<IReadOnlyList<VmInfo>>)));
    }

    [Fact]
    public void Every_failure_a_library_user_catches_is_the_sdks_own_exception_with_the_clis_codes()
    {
        // One source file is compiled into both assemblies (src/Vmsan.Core/Errors/ErrorCode.cs); this pins that the
        // casts between them (by value) and the wire names agree.
        var core = Enum.GetValues<Vmsan.Core.Errors.ErrorCode>().Select(c => (c.ToString(), (int)c, Vmsan.Core.Errors.ErrorCodeNames.ToWire(c)));
        var sdk = Enum.GetValues<Vmsan.Errors.ErrorCode>().Select(c => (c.ToString(), (int)c, Vmsan.Errors.ErrorCodeExtensions.ToWire(c)));
        Assert.Equal(core, sdk);
    }

    private static bool IsOtherVmsanAssembly(Type t) =>
        t.Assembly != Sdk && t.Assembly.GetName().Name is { } name && (name == "Vmsan" || name.StartsWith("Vmsan.", StringComparison.Ordinal));

    /// <summary>A type with its element type and generic arguments, recursively (Task&lt;IReadOnlyList&lt;X&gt;&gt; gives X).</summary>
    private static IEnumerable<Type> Flatten(Type t)
    {
        if (t.IsGenericParameter)
            yield break;
        yield return t;
        if (t.HasElementType)
            foreach (var e in Flatten(t.GetElementType()!))
                yield return e;
        if (t.IsGenericType)
            foreach (var a in t.GetGenericArguments().SelectMany(Flatten))
                yield return a;
    }

    private static bool Visible(MethodBase? m) => m is not null && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly);

    private static bool Visible(Type t) => t.IsPublic || (t.IsNestedPublic || t.IsNestedFamily || t.IsNestedFamORAssem) && Visible(t.DeclaringType!);

    private static IEnumerable<(string Where, IReadOnlyList<Type> Types)> PublicSignatures()
    {
        foreach (var type in Sdk.GetTypes().Where(Visible))
        {
            var name = type.FullName!;
            var heads = new List<Type>();
            if (type.BaseType is { } b)
                heads.Add(b);
            heads.AddRange(type.GetInterfaces());
            heads.AddRange(type.GetCustomAttributesData().Select(a => a.AttributeType).Where(a => a.IsPublic));
            yield return (name, heads);

            foreach (var m in type.GetMethods(Declared).Where(m => Visible(m)))
                yield return ($"{name}.{m.Name}", [m.ReturnType, .. m.GetParameters().Select(p => p.ParameterType)]);
            foreach (var c in type.GetConstructors(Declared).Where(c => Visible(c)))
                yield return ($"{name}..ctor", [.. c.GetParameters().Select(p => p.ParameterType)]);
            foreach (var p in type.GetProperties(Declared).Where(p => Visible(p.GetMethod) || Visible(p.SetMethod)))
                yield return ($"{name}.{p.Name}", [p.PropertyType, .. p.GetIndexParameters().Select(i => i.ParameterType)]);
            foreach (var f in type.GetFields(Declared).Where(f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly))
                yield return ($"{name}.{f.Name}", [f.FieldType]);
            foreach (var e in type.GetEvents(Declared).Where(e => Visible(e.AddMethod)))
                yield return ($"{name}.{e.Name}", [e.EventHandlerType!]);
        }
    }
}
