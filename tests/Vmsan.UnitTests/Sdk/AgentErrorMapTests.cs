using System.Net.Http;
using Vmsan.Agent.Client;
using Vmsan.Agent.Protocol;
using Vmsan.Core.Errors;

namespace Vmsan.UnitTests.Sdk;

public class AgentErrorMapTests
{
    [Fact]
    public void An_unreachable_agent_is_AGENT_UNREACHABLE_even_when_HttpClient_wrapped_the_connect_failure()
    {
        // SocketsHttpHandler wraps whatever the connect callback throws in an HttpRequestException.
        var connect = new VmsanException(ErrorCode.AgentUnreachable, "Cannot connect to 172.30.0.2:9119: nothing is listening.", "fix");
        var ex = new AgentException(AgentErrorReason.Unreachable, "agent unreachable", innerException: new HttpRequestException("wrapped", connect));

        var mapped = AgentErrorMap.ToVmsan(ex);

        Assert.Equal("AGENT_UNREACHABLE", mapped.Code.ToWire());
        Assert.False(string.IsNullOrWhiteSpace(mapped.Fix));
    }

    [Fact]
    public void A_vanished_namespace_under_the_connect_callback_keeps_its_own_code()
    {
        var connect = new VmsanException(ErrorCode.VmNotRunning, "network namespace is gone", "fix");
        var ex = new AgentException(AgentErrorReason.Unreachable, "agent unreachable", innerException: new HttpRequestException("wrapped", connect));

        Assert.Equal(ErrorCode.VmNotRunning, AgentErrorMap.ToVmsan(ex).Code);
    }

    [Fact]
    public void An_unknown_user_is_USER_NOT_FOUND()
    {
        var ex = new AgentException(AgentErrorReason.Rejected, "no such user: nobody2", AgentErrorCodes.UserNotFound);

        var mapped = AgentErrorMap.ToVmsan(ex);

        Assert.Equal("USER_NOT_FOUND", mapped.Code.ToWire());
        Assert.Contains("nobody2", mapped.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(nameof(AgentErrorReason.Protocol))]
    [InlineData(nameof(AgentErrorReason.BadRequest))]
    [InlineData(nameof(AgentErrorReason.Forbidden))]
    public void Other_agent_failures_stay_AGENT_ERROR(string reason)
    {
        Assert.Equal(ErrorCode.AgentError, AgentErrorMap.ToVmsan(new AgentException(Enum.Parse<AgentErrorReason>(reason), "x")).Code);
    }

    [Fact]
    public void Every_error_code_is_listed_in_the_README()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vmsan.sln")))
            dir = dir.Parent;
        var readme = File.ReadAllText(Path.Combine(dir!.FullName, "README.md"));

        var missing = Enum.GetValues<ErrorCode>().Select(c => c.ToWire()).Where(w => !readme.Contains($"`{w}`", StringComparison.Ordinal)).ToList();

        Assert.Empty(missing);
    }
}
