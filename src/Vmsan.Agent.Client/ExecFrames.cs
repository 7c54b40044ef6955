using Vmsan.Agent.Protocol;

namespace Vmsan.Agent.Client;

/// <summary>
/// Reads an exec's frames — the body of POST /exec, or the messages of an exec WebSocket — and routes them: stdout and
/// stderr payloads to their streams as they arrive (flushed, so an interactive reader sees them at once), the started
/// frame to a callback, and the exit or error frame to the end of the copy.
/// </summary>
internal static class ExecFrames
{
    /// <param name="frames">The agent's frame stream.</param>
    /// <param name="stdout">Where stdout payloads go; null discards.</param>
    /// <param name="stderr">Where stderr payloads go; null discards.</param>
    /// <param name="started">Called with the started frame.</param>
    /// <param name="ending">Awaited when the exit or error frame arrives, before returning or throwing.</param>
    /// <param name="cancellationToken">Cancels the copy.</param>
    /// <returns>The exit status, with the pid from the started frame (null when the command could not start).</returns>
    /// <exception cref="AgentException"><see cref="AgentErrorReason.Rejected"/> for an error frame;
    /// <see cref="AgentErrorReason.Protocol"/> for an invalid frame or a stream that ends without an exit frame.</exception>
    public static async Task<ExecResult> CopyAsync(Stream frames, Stream? stdout, Stream? stderr, Action<ExecStarted>? started,
        Func<Task>? ending, CancellationToken cancellationToken)
    {
        var reader = new FrameReader(frames);
        int? pid = null;
        while (await reader.ReadFrameAsync(cancellationToken).ConfigureAwait(false) is { } frame)
        {
            switch (frame.Type)
            {
                case FrameType.Stdout when stdout is not null:
                    await stdout.WriteAsync(frame.Payload, cancellationToken).ConfigureAwait(false);
                    await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case FrameType.Stderr when stderr is not null:
                    await stderr.WriteAsync(frame.Payload, cancellationToken).ConfigureAwait(false);
                    await stderr.FlushAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case FrameType.Started:
                    var info = AgentClient.Deserialize(frame.Payload, AgentJsonContext.Default.ExecStarted);
                    pid = info.Pid;
                    started?.Invoke(info);
                    break;
                case FrameType.Exit:
                    var exit = AgentClient.Deserialize(frame.Payload, AgentJsonContext.Default.ExecExit);
                    await EndAsync(ending).ConfigureAwait(false);
                    return new ExecResult(exit.ExitCode, exit.Signal, exit.TimedOut, pid);
                case FrameType.Error:
                    var error = AgentClient.Deserialize(frame.Payload, AgentJsonContext.Default.AgentError);
                    await EndAsync(ending).ConfigureAwait(false);
                    throw new AgentException(AgentErrorReason.Rejected, error.Message, error.Code);
            }
        }

        throw new AgentException(AgentErrorReason.Protocol, "exec stream ended without an exit frame");
    }

    private static Task EndAsync(Func<Task>? ending) => ending?.Invoke() ?? Task.CompletedTask;
}
