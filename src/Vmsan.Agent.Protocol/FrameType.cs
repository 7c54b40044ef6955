namespace Vmsan.Agent.Protocol;

/// <summary>The type byte of a frame: <c>[type:1][length:4 BE][payload]</c>.</summary>
public enum FrameType : byte
{
    /// <summary>Raw bytes the process wrote to stdout.</summary>
    Stdout = 1,

    /// <summary>Raw bytes the process wrote to stderr.</summary>
    Stderr = 2,

    /// <summary>JSON <see cref="ExecExit"/>; the last frame of an exec.</summary>
    Exit = 3,

    /// <summary>JSON <see cref="AgentError"/>; ends the stream (no exit frame follows).</summary>
    Error = 4,

    /// <summary>JSON <see cref="ExecStarted"/>; the first frame of a started exec.</summary>
    Started = 5,

    /// <summary>Raw bytes for the process's stdin (client to agent, streaming calls).</summary>
    Stdin = 6,

    /// <summary>Empty: the client closed stdin.</summary>
    StdinEof = 7,

    /// <summary>JSON <see cref="ExecSignal"/>: send a signal to the process group (client to agent).</summary>
    Signal = 8,

    /// <summary>JSON <see cref="ExecResize"/>: new terminal size for a TTY exec (client to agent).</summary>
    Resize = 9,
}
