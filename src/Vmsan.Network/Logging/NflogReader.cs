using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vmsan.Core.Errors;

namespace Vmsan.Network.Logging;

/// <summary>
/// Reads the packets nftables logs to one NFLOG group of a network namespace (the VM's refusals,
/// <c>log group 7</c>) over an nfnetlink_log socket created inside that namespace. A dedicated
/// thread blocks in recv(2) with a short timeout so disposing stops it promptly; every packet is
/// handed to a callback, parsed by <see cref="NflogWire"/>.
/// </summary>
public sealed class NflogReader : IDisposable
{
    /// <summary>Bytes copied of each packet: an IPv6 header with a few extension headers and the ports.</summary>
    public const uint CopyRange = 128;

    private readonly SafeFileHandle _fd;
    private readonly Action<NflogPacket> _onPacket;
    private readonly Action<string> _onError;
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _lost;

    private NflogReader(SafeFileHandle fd, Action<NflogPacket> onPacket, Action<string> onError)
    {
        _fd = fd;
        _onPacket = onPacket;
        _onError = onError;
        _thread = new Thread(Loop) { IsBackground = true, Name = "vmsan-nflog" };
    }

    /// <summary>Packets the kernel dropped because we read too slowly (ENOBUFS); the nft counters still count them.</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>
    /// Binds NFLOG <paramref name="group"/> in <paramref name="netns"/> and starts reading.
    /// INTERNAL naming the step when the kernel refuses (e.g. EBUSY: another reader holds the group there).
    /// </summary>
    public static async Task<NflogReader> StartAsync(string netns, ushort group, Action<NflogPacket> onPacket, Action<string> onError)
    {
        ArgumentNullException.ThrowIfNull(onPacket);
        ArgumentNullException.ThrowIfNull(onError);
        var fd = await NetnsThread.RunAsync(netns, () =>
            Libc.SocketHandle(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Libc.NETLINK_NETFILTER)).ConfigureAwait(false);
        try
        {
            if (fd.IsInvalid)
                throw Failure("socket(AF_NETLINK, NETLINK_NETFILTER)", group, Marshal.GetLastPInvokeError());
            Configure(fd, group);
            var reader = new NflogReader(fd, onPacket, onError);
            reader._thread.UnsafeStart();
            return reader;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static unsafe void Configure(SafeFileHandle fd, ushort group)
    {
        var addr = new Libc.SockaddrNl { Family = Libc.AF_NETLINK };
        if (Libc.Bind(fd, &addr, sizeof(Libc.SockaddrNl)) != 0)
            throw Failure("bind", group, Marshal.GetLastPInvokeError());
        // A refusal flood must not be lost to a small default buffer; recv wakes every 250 ms to see Dispose.
        var size = 1 << 20;
        _ = Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, &size, sizeof(int));
        var timeout = new Libc.Timeval { Sec = 0, Usec = 250_000 };
        if (Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &timeout, (uint)sizeof(Libc.Timeval)) != 0)
            throw Failure("setsockopt(SO_RCVTIMEO)", group, Marshal.GetLastPInvokeError());
        Request(fd, NflogWire.BindRequest(1, group), 1, "bind to the group", group);
        Request(fd, NflogWire.ModeRequest(2, group, CopyRange), 2, "set the copy mode", group);
    }

    /// <summary>Sends one config request and waits for its acknowledgement.</summary>
    private static unsafe void Request(SafeFileHandle fd, byte[] message, uint seq, string what, ushort group)
    {
        fixed (byte* p = message)
        {
            if (Libc.Send(fd, p, (nuint)message.Length, 0) != message.Length)
                throw Failure($"send ({what})", group, Marshal.GetLastPInvokeError());
        }
        var buf = new byte[8192];
        var deadline = Environment.TickCount64 + 5000;
        while (Environment.TickCount64 < deadline)
        {
            nint n;
            fixed (byte* p = buf)
                n = Libc.Recv(fd, p, (nuint)buf.Length, 0);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is Libc.EINTR or Libc.EAGAIN)
                    continue;
                throw Failure($"recv ({what})", group, errno);
            }
            foreach (var item in NflogWire.Parse(buf.AsSpan(0, (int)n)))
            {
                if (item.Sequence != seq)
                    continue;
                if (item.Kind == NflogItemKind.Ack)
                    return;
                if (item.Kind == NflogItemKind.Error)
                    throw Failure(what, group, item.Error);
            }
        }
        throw new VmsanException(ErrorCode.Internal, $"nfnetlink_log did not acknowledge '{what}' for group {group}.",
            "Check that the kernel has nfnetlink_log (modprobe nfnetlink_log); `vmsan doctor` checks the host.");
    }

    private unsafe void Loop()
    {
        var buf = new byte[1 << 16];
        while (!_stop)
        {
            nint n;
            try
            {
                fixed (byte* p = buf)
                    n = Libc.Recv(_fd, p, (nuint)buf.Length, 0);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is Libc.EINTR or Libc.EAGAIN)
                    continue;
                if (errno == Libc.ENOBUFS)
                {
                    // The socket overran: some log lines are gone, the counters are not.
                    Interlocked.Increment(ref _lost);
                    continue;
                }
                if (!_stop)
                    _onError($"nflog recv failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); refusals are still counted but no longer logged");
                return;
            }
            foreach (var item in NflogWire.Parse(buf.AsSpan(0, (int)n)))
            {
                if (item is { Kind: NflogItemKind.Packet, Packet: { } packet })
                {
                    try
                    {
                        _onPacket(packet);
                    }
                    catch (Exception ex)
                    {
                        _onError("nflog: " + ex.Message);
                    }
                }
            }
        }
    }

    private static VmsanException Failure(string call, ushort group, int errno) => new(ErrorCode.Internal,
        $"Cannot read NFLOG group {group}: {call} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).",
        errno is 1 or 16
            ? "Another process in the VM's namespace reads this NFLOG group; stop it."
            : "Check that the kernel has nfnetlink_log (modprobe nfnetlink_log); `vmsan doctor` checks the host.");

    public void Dispose()
    {
        _stop = true;
        if (_thread.IsAlive && Thread.CurrentThread != _thread)
            _thread.Join(TimeSpan.FromSeconds(2));
        _fd.Dispose();
    }
}
