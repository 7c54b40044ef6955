using System.Text;

namespace Vmsan.Supervision;

/// <summary>
/// Watches the guest's serial console log for a marker line. The agent prints
/// "vmsan-agent: ready" the moment it listens; reacting to that beats polling the agent over the
/// network with a backoff (which cost ~300 ms per boot), and polling a local file is cheap.
/// </summary>
internal static class ConsoleWatcher
{
    public const string AgentReady = "vmsan-agent: ready";

    /// <summary>Completes true when <paramref name="marker"/> appears in <paramref name="path"/>; false if cancelled.</summary>
    public static async Task<bool> WaitForAsync(string path, string marker, CancellationToken ct)
    {
        var needle = Encoding.ASCII.GetBytes(marker);
        var carry = Array.Empty<byte>();
        var buffer = new byte[16 * 1024];
        try
        {
            await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            while (!ct.IsCancellationRequested)
            {
                var n = await fs.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    await Task.Delay(5, ct).ConfigureAwait(false);
                    continue;
                }
                // Search carry + new bytes so a marker split across reads is still found.
                var window = new byte[carry.Length + n];
                carry.CopyTo(window, 0);
                Array.Copy(buffer, 0, window, carry.Length, n);
                if (window.AsSpan().IndexOf(needle) >= 0)
                    return true;
                carry = window[Math.Max(0, window.Length - needle.Length + 1)..];
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (IOException)
        {
        }
        return false;
    }
}
