using System.Text;
using System.Text.Json;
using Vmsan.Agent.Http;
using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Api;

/// <summary>
/// POST /rekey: a snapshot clone becomes its own machine. Every clone of a snapshot resumes with the snapshot's
/// token, hostname, clock and RNG state in memory; the host (the only one holding the old token) calls this once
/// right after resume. The clock is set first so the rest runs on the right time; entropy is mixed into the input
/// pool and the CRNG is reseeded so /dev/urandom diverges between clones at once; a clone's exec/session table is
/// emptied; the token is swapped last, after which the snapshot's token is refused.
/// </summary>
internal sealed class RekeyEndpoint(TokenAuthenticator auth, HealthEndpoint health, Sessions.SessionManager sessions)
{
    public async ValueTask HandleAsync(RequestContext context)
    {
        var body = await context.ReadBodyAsync(64 * 1024, context.ServerToken).ConfigureAwait(false);
        RekeyRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, AgentJsonContext.Default.RekeyRequest);
        }
        catch (JsonException e)
        {
            throw new HttpBadRequestException($"invalid rekey request: {e.Message}", closeConnection: false);
        }

        byte[] entropy;
        try
        {
            entropy = Convert.FromBase64String(request?.Entropy ?? "");
        }
        catch (FormatException)
        {
            entropy = [];
        }

        if (request is null || request.Token.Length < 16 || request.Hostname.Length is 0 or > 64 || entropy.Length < 16 || entropy.Length > 4096)
        {
            throw new HttpBadRequestException("need {token (16+ chars), hostname (1-64), entropy (base64, 16-4096 bytes), unixTimeNs}", closeConnection: false);
        }

        if (request.UnixTimeNs > 0)
        {
            var ts = new Libc.TimeSpec { Seconds = request.UnixTimeNs / 1_000_000_000, Nanoseconds = request.UnixTimeNs % 1_000_000_000 };
            Libc.Check(Libc.ClockSetTime(Libc.CLOCK_REALTIME, ts), "clock_settime");
        }

        AddEntropy(entropy);
        SetHostname(request.Hostname);
        health.Hostname = request.Hostname;
        // A clone's exec table starts empty (its processes keep running): before the token swap, so the first call
        // made with the new token already sees the fresh table.
        var forgotten = request.NewMachine ? sessions.ForgetAll() : (0, 0);
        auth.Replace(request.Token);
        AgentLog.Info($"rekeyed: hostname {request.Hostname}, clock set, {entropy.Length} bytes of entropy"
            + (request.NewMachine ? $", exec table emptied ({forgotten.Item1} forgotten, {forgotten.Item2} still running)" : ""));
        await context.WriteAsync(200, AgentProtocol.JsonContentType, """{"status":"rekeyed"}"""u8.ToArray()).ConfigureAwait(false);
    }

    /// <summary>struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; } then a CRNG reseed.</summary>
    private static unsafe void AddEntropy(byte[] bytes)
    {
        var info = new byte[8 + bytes.Length];
        BitConverter.TryWriteBytes(info.AsSpan(0, 4), bytes.Length * 8);
        BitConverter.TryWriteBytes(info.AsSpan(4, 4), bytes.Length);
        bytes.CopyTo(info, 8);
        using var fd = Libc.Open("/dev/urandom", Libc.O_RDWR);
        var raw = (int)fd.DangerousGetHandle();
        fixed (byte* p = info)
        {
            Libc.Check(Libc.Ioctl(raw, Libc.RNDADDENTROPY, p), "ioctl(RNDADDENTROPY)");
        }

        Libc.Check(Libc.Ioctl(raw, Libc.RNDRESEEDCRNG, null), "ioctl(RNDRESEEDCRNG)");
    }

    private static unsafe void SetHostname(string name)
    {
        var bytes = Encoding.ASCII.GetBytes(name);
        fixed (byte* p = bytes)
        {
            Libc.Check(Libc.SetHostname(p, (nuint)bytes.Length), "sethostname");
        }
    }
}
