using Vmsan.Network.Logging;

namespace Vmsan.UnitTests.Network.Dns;

public sealed class NetworkLogTests
{
    [Fact]
    public void Events_round_trip_and_read_as_one_line_each()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vmsan-netlog-{Guid.NewGuid():N}.log");
        try
        {
            var t = new DateTimeOffset(2026, 12, 2, 20, 0, 0, TimeSpan.Zero);
            using (var log = new NetworkLog(path, () => t))
            {
                log.Append(new NetworkEvent(t, "dns", "answered", "a.test", "A", Answer: ["198.51.100.1"], Rule: "a.test"));
                log.Append(new NetworkEvent(t, "proxy", "refused", "evil.test", Dst: "198.51.100.1:443", Rule: "name-not-allowed"));
            }
            File.AppendAllText(path, "{\"time\":\"cut short"); // a write cut by a crash

            var events = NetworkLog.Read(path);

            Assert.Equal(2, events.Count);
            Assert.Equal("2026-12-02 20:00:00.000 dns answered a.test A answer=198.51.100.1 rule=a.test", NetworkLog.Format(events[0]));
            Assert.Equal("2026-12-02 20:00:00.000 proxy refused evil.test dst=198.51.100.1:443 rule=name-not-allowed", NetworkLog.Format(events[1]));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_flood_is_cut_to_the_rate_and_counted()
    {
        var t = new DateTimeOffset(2026, 12, 2, 20, 0, 0, TimeSpan.Zero);
        using var log = new NetworkLog(null, () => t);
        for (var i = 0; i < 10_000; i++)
            log.Append(new NetworkEvent(t, "dns", "refused", $"x{i}.evil.test"));
        Assert.Equal(NetworkLog.Burst, log.Written);

        t += TimeSpan.FromSeconds(1);
        log.Append(new NetworkEvent(t, "dns", "refused", "later.evil.test"));

        Assert.Equal(NetworkLog.Burst + 2, log.Written); // the "suppressed N" line, then the event
    }
}
