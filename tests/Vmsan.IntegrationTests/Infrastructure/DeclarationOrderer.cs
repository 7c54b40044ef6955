using Xunit.Sdk;
using Xunit.v3;

namespace Vmsan.IntegrationTests.Infrastructure;

/// <summary>Runs a story's steps (test methods) in the order they are written: they share one VM.</summary>
public sealed class DeclarationOrderer : ITestMethodOrderer
{
    public IReadOnlyCollection<TTestMethod?> OrderTestMethods<TTestMethod>(IReadOnlyCollection<TTestMethod?> testMethods)
        where TTestMethod : notnull, ITestMethod =>
        testMethods.OrderBy(m => (m as IXunitTestMethod)?.Method.MetadataToken ?? int.MaxValue).ToList();
}
