using Xunit.Sdk;
using Xunit.v3;

namespace Vmsan.IntegrationTests.Infrastructure;

/// <summary>Runs a story's steps in the order they are written (they share one VM).</summary>
public sealed class DeclarationOrderer : ITestCaseOrderer
{
    public IReadOnlyCollection<TTestCase> OrderTestCases<TTestCase>(IReadOnlyCollection<TTestCase> testCases)
        where TTestCase : notnull, ITestCase =>
        testCases.OrderBy(t => (t as IXunitTestCase)?.TestMethod.Method.MetadataToken ?? 0).ToList();
}
