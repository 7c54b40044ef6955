namespace Vmsan.Agent.Protocol;

/// <summary>Constants shared by the agent and its clients (see docs/internals.md, "Agent HTTP API").</summary>
public static class AgentProtocol
{
    /// <summary>The TCP port the agent listens on inside the guest.</summary>
    public const int Port = 9119;

    /// <summary>The guest's address inside its network namespace (every VM has the same one).</summary>
    public const string GuestAddress = "172.30.0.2";

    /// <summary>Content type of a response body made of frames.</summary>
    public const string FramesContentType = "application/vnd.vmsan.frames";

    /// <summary>Content type of JSON request and response bodies.</summary>
    public const string JsonContentType = "application/json";

    /// <summary>Default upper bound of one frame's payload; readers reject larger frames.</summary>
    public const int DefaultMaxFramePayload = 16 * 1024 * 1024;

    /// <summary>Request paths.</summary>
    public static class Paths
    {
        /// <summary><c>GET</c>, no authentication.</summary>
        public const string Health = "/health";

        /// <summary><c>POST</c> an <see cref="ExecRequest"/>, answered with frames.</summary>
        public const string Exec = "/exec";

        /// <summary><c>POST</c>, answered 202; the agent then powers the VM off.</summary>
        public const string Shutdown = "/shutdown";
    }
}

/// <summary>Stable error codes carried by <see cref="AgentError"/>.</summary>
public static class AgentErrorCodes
{
    /// <summary>No bearer token was sent.</summary>
    public const string Unauthorized = "UNAUTHORIZED";

    /// <summary>The bearer token is wrong.</summary>
    public const string Forbidden = "FORBIDDEN";

    /// <summary>The request is malformed (HTTP, JSON or field values).</summary>
    public const string BadRequest = "BAD_REQUEST";

    /// <summary>The request body is larger than the agent accepts.</summary>
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";

    /// <summary>No such endpoint.</summary>
    public const string NotFound = "NOT_FOUND";

    /// <summary>The endpoint exists but not for this method.</summary>
    public const string MethodNotAllowed = "METHOD_NOT_ALLOWED";

    /// <summary>The requested user is not supported (only root for now).</summary>
    public const string UserUnsupported = "USER_UNSUPPORTED";

    /// <summary>The agent failed in an unexpected way.</summary>
    public const string Internal = "INTERNAL";
}
