using System.Text;
using Vmsan.Network.Proxy;

namespace Vmsan.UnitTests.Network.Proxy;

public sealed class HttpHostTests
{
    private static PeekResult P(string s) => HttpHost.Parse(Encoding.Latin1.GetBytes(s));

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: Files.Allowed.Test\r\nAccept: */*\r\n\r\n", "files.allowed.test")]
    [InlineData("\r\nPOST /x HTTP/1.0\r\nhost:a.test:8080\r\n\r\nbody", "a.test")]
    [InlineData("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", "a.test")]
    public void The_host_header_names_the_request(string request, string host)
    {
        var r = P(request);
        Assert.Equal(PeekStatus.Complete, r.Status);
        Assert.Equal(host, r.Name);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nAccept: x\r\n\r\n")]
    [InlineData("GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("CONNECT b.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHost : b.test\r\nHost: a.test\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHost: a.test\r\n b.test\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHost: 198.51.100.1\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n")]
    public void Ambiguous_or_nameless_requests_are_refused(string request)
    {
        Assert.Equal(PeekStatus.Invalid, P(request).Status);
    }

    [Fact]
    public void A_partial_head_needs_more_and_other_protocols_are_not_http()
    {
        Assert.Equal(PeekStatus.NeedMore, P("GE").Status);
        Assert.Equal(PeekStatus.NeedMore, P("GET / HTTP/1.1\r\nHost: a.test\r\n").Status);
        Assert.Equal(PeekStatus.NotThisProtocol, P("SSH-2.0-x\r\n").Status);
        Assert.Equal(PeekStatus.NotThisProtocol, P("GETX / HTTP/1.1\r\n").Status);
    }
}
