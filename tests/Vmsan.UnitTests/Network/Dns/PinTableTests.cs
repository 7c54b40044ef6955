using System.Net;
using Vmsan.Network.Dns;

namespace Vmsan.UnitTests.Network.Dns;

public sealed class PinTableTests
{
    private DateTime _now = new(2026, 12, 2, 20, 0, 0, DateTimeKind.Utc);

    private static readonly IPAddress Ip1 = IPAddress.Parse("198.51.100.1");
    private static readonly IPAddress Ip2 = IPAddress.Parse("198.51.100.2");

    [Fact]
    public void A_short_ttl_gets_the_floor_and_a_long_one_the_ceiling()
    {
        Assert.Equal(PinTable.Floor, PinTable.TimeoutFor(5));
        Assert.Equal(TimeSpan.FromSeconds(300), PinTable.TimeoutFor(300));
        Assert.Equal(PinTable.Ceiling, PinTable.TimeoutFor(uint.MaxValue));
    }

    [Fact]
    public void A_pin_opens_only_names_of_its_own_pattern_until_it_expires()
    {
        var t = new PinTable(() => _now);
        t.Add("*.a.test", [(Ip1, 5)]);
        t.Add("b.test", [(Ip2, 600)]);

        Assert.True(t.Allows("www.a.test", Ip1));
        Assert.False(t.Allows("a.test", Ip1));
        Assert.False(t.Allows("b.test", Ip1));
        Assert.False(t.Allows("www.a.test", Ip2));
        Assert.Equal("*.a.test", t.AnyRuleFor(Ip1));

        _now += TimeSpan.FromSeconds(59);
        Assert.True(t.Allows("x.a.test", Ip1));
        _now += TimeSpan.FromSeconds(2);
        Assert.False(t.Allows("x.a.test", Ip1));
        Assert.Null(t.AnyRuleFor(Ip1));
        Assert.True(t.Allows("B.TEST", Ip2));
    }

    [Fact]
    public void Repeated_answers_touch_the_kernel_only_when_its_element_runs_low()
    {
        var t = new PinTable(() => _now);
        var first = t.Add("b.test", [(Ip1, 300)]);
        Assert.Equal([new PinElement(Ip1, TimeSpan.FromSeconds(300), false)], first);

        _now += TimeSpan.FromSeconds(100);
        Assert.Empty(t.Add("b.test", [(Ip1, 300)]));

        _now += TimeSpan.FromSeconds(100); // 100 s left in the kernel, less than half of 300
        Assert.Equal([new PinElement(Ip1, TimeSpan.FromSeconds(300), true)], t.Add("b.test", [(Ip1, 300)]));
    }

    [Fact]
    public void A_policy_change_drops_removed_patterns_and_returns_pins_to_restore()
    {
        var t = new PinTable(() => _now);
        t.Add("a.test", [(Ip1, 300)]);
        t.Add("b.test", [(Ip2, 300)]);

        var back = t.Retain(["b.test"], kernelFlushed: true);

        Assert.False(t.Allows("a.test", Ip1));
        Assert.True(t.Allows("b.test", Ip2));
        Assert.Equal([new PinElement(Ip2, TimeSpan.FromSeconds(300), false)], back);
    }
}
