using Xunit.Sdk;
using Xunit.v3;

namespace Vmsan.IntegrationTests.Infrastructure;

/// <summary>Runs a story's steps in the order they are written in the file (they share one VM).</summary>
public sealed class DeclarationOrderer : ITestCaseOrderer
{
    public IReadOnlyCollection<TTestCase> OrderTestCases<TTestCase>(IReadOnlyCollection<TTestCase> testCases)
        where TTestCase : notnull, ITestCase =>
        testCases.OrderBy(t => t.SourceLineNumber ?? int.MaxValue).ThenBy(t => t.TestCaseDisplayName, StringComparer.Ordinal).ToList();
}
