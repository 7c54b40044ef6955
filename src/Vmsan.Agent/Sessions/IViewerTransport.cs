namespace Vmsan.Agent.Sessions;

/// <summary>
/// How a <see cref="Viewer"/>'s frames leave the agent: a WebSocket (<c>/exec/ws</c>, attach) or the chunked body of
/// <c>POST /exec</c>. Only the viewer's send loop calls <see cref="SendAsync"/> and <see cref="CompleteAsync"/>.
/// </summary>
internal interface IViewerTransport
{
    /// <summary>Sends one encoded frame.</summary>
    ValueTask SendAsync(byte[] frame);

    /// <summary>Every frame was sent (the last one is exit or error): end the stream normally.</summary>
    ValueTask CompleteAsync();

    /// <summary>Drops the connection at once, without a normal end.</summary>
    void Abort();
}
