using System.Diagnostics;
using Vmsan.Core.Errors;
using Vmsan.Core.State;
using Vmsan.UnitTests.Support;

namespace Vmsan.UnitTests.State;

public sealed class FileLockTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void A_second_acquirer_times_out_with_VmBusy()
    {
        var path = _tmp.Combine("locks", ".lock");
        using var held = FileLock.Acquire(path, TimeSpan.FromSeconds(1));
        var sw = Stopwatch.StartNew();

        var ex = ErrorAssert.Throws(ErrorCode.VmBusy, () => FileLock.Acquire(path, TimeSpan.FromMilliseconds(150)));

        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(140), TimeSpan.FromSeconds(5));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_waiter_gets_the_lock_once_the_holder_releases_it()
    {
        // Arrange
        var path = _tmp.Combine(".lock");
        var held = FileLock.Acquire(path, TimeSpan.FromSeconds(1));
        var releaser = new Thread(() =>
        {
            Thread.Sleep(200);
            held.Dispose();
        });
        var sw = Stopwatch.StartNew();

        // Act
        releaser.Start();
        using var second = FileLock.Acquire(path, TimeSpan.FromSeconds(10));

        // Assert
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(190), TimeSpan.FromSeconds(5));
        releaser.Join();
    }

    [Fact]
    public void The_holders_never_overlap()
    {
        // Arrange
        var path = _tmp.Combine(".lock");
        var inside = 0;
        var maxInside = 0;

        // Act
        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 20; i++)
            {
                using var l = FileLock.Acquire(path, TimeSpan.FromSeconds(30));
                var now = Interlocked.Increment(ref inside);
                InterlockedMax(ref maxInside, now);
                Thread.SpinWait(1000);
                Interlocked.Decrement(ref inside);
            }
        });

        // Assert
        Assert.Equal(1, maxInside);
    }

    [Fact]
    public void A_released_lock_can_be_taken_again_at_once()
    {
        var path = _tmp.Combine(".lock");
        FileLock.Acquire(path, TimeSpan.FromSeconds(1)).Dispose();

        using var again = FileLock.Acquire(path, TimeSpan.Zero);

        Assert.True(File.Exists(path));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
