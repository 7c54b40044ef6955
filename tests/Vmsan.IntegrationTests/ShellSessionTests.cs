using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>`vmsan connect` in a real terminal (tmux): a named session survives a disconnect and keeps its scrollback.</summary>
public sealed class ShellSessionTests : IAsyncLifetime
{
    private readonly VmsanWorld _w = new();
    private readonly string _tmux = "vt-tmux-" + Sh.Rand();
    private string _id = "";

    public async ValueTask InitializeAsync()
    {
        await _w.InitializeAsync();
        _id = await _w.CreateVm();
    }

    public async ValueTask DisposeAsync()
    {
        await Sh.Bash($"tmux -L {_tmux} kill-server 2>/dev/null; true");
        await _w.DisposeAsync();
    }

    // TERM set explicitly: CI runs without a terminal and tmux wants to know what it emulates.
    private Task<ProcResult> Tmux(string args) => Sh.Bash($"TERM=xterm-256color tmux -L {_tmux} {args}");

    private async Task<string> WaitForScreen(string window, string text)
    {
        var screen = "";
        for (var i = 0; i < 100; i++)
        {
            screen = (await Tmux($"capture-pane -p -S -200 -t {window}")).Stdout;
            if (screen.Contains(text, StringComparison.Ordinal))
                return screen;
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        throw new Xunit.Sdk.XunitException($"'{text}' never appeared on the screen:\n{screen}");
    }

    [Fact]
    public async Task A_named_session_survives_detach_and_disconnect_and_a_reconnect_shows_the_scrollback()
    {
        var connect = $"env VMSAN_HOME={_w.Home} ip netns exec {_w.HostNs} {VmsanWorld.Cli} connect {_id} --session work";
        // The wrapper keeps the pane open after vmsan exits so its last words can be read.
        Assert.Equal(0, (await Tmux($"new-session -d -s a -x 120 -y 30 \"{connect}; echo EXITED $?; sleep 60\"")).ExitCode);
        await Tmux("send-keys -t a 'echo marker-$((6*7)); tty' Enter");
        // `tty` prints after the marker: wait for the later one.
        var first = await WaitForScreen("a", "/dev/pts/");
        Assert.Contains("marker-42", first);
        Assert.Matches(@"/dev/pts/\d+", first);

        // Ctrl-] leaves the session running and vmsan exits 0.
        await Tmux("send-keys -t a C-]");
        var detached = await WaitForScreen("a", "EXITED 0");
        Assert.Contains("detached from", detached);

        // A second viewer gets the scrollback and the new terminal's size.
        Assert.Equal(0, (await Tmux($"new-session -d -s b -x 120 -y 30 \"{connect}\"")).ExitCode);
        await WaitForScreen("b", "marker-42");
        await Tmux("send-keys -t b 'stty size' Enter");
        await WaitForScreen("b", " 120\n");

        // Its terminal vanishing (SIGHUP) is a disconnect, not the end of the session.
        await Tmux("kill-session -t b");
        await Task.Delay(500, TestContext.Current.CancellationToken);
        var ps = await _w.VmsanJson("ps", _id);
        Assert.Contains(ps.GetProperty("execs").EnumerateArray(),
            e => e.GetProperty("session").GetString() == "work" && e.GetProperty("state").GetString() == "running");
        Assert.Equal(0, (await Tmux($"new-session -d -s c -x 120 -y 30 \"{connect}\"")).ExitCode);
        await WaitForScreen("c", "marker-42");
    }
}
