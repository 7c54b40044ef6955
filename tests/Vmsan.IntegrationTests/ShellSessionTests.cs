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

    private Task<ProcResult> Tmux(string args) => Sh.Bash($"tmux -L {_tmux} {args}");

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
    public async Task A_named_session_survives_a_disconnect_and_a_reconnect_shows_the_scrollback()
    {
        var connect = $"env VMSAN_HOME={_w.Home} ip netns exec {_w.HostNs} {VmsanWorld.Cli} connect {_id} --session work";
        Assert.Equal(0, (await Tmux($"new-session -d -s a -x 120 -y 30 \"{connect}\"")).ExitCode);
        await Tmux("send-keys -t a 'echo marker-$((6*7)); tty' Enter");
        var first = await WaitForScreen("a", "marker-42");
        Assert.Matches(@"/dev/pts/\d+", first);

        // Disconnect the viewer (the terminal goes away), not the session.
        await Tmux("kill-session -t a");
        await Task.Delay(500, TestContext.Current.CancellationToken);

        Assert.Equal(0, (await Tmux($"new-session -d -s b -x 120 -y 30 \"{connect}\"")).ExitCode);
        await WaitForScreen("b", "marker-42");          // scrollback replayed
        await Tmux("send-keys -t b 'stty size' Enter");
        await WaitForScreen("b", " 120\n");             // the new terminal's width reached the PTY
    }
}
