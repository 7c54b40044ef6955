namespace Vmsan.Agent.Protocol;

/// <summary>Constants shared by the agent and its clients (see docs/internals.md, "Agent HTTP API").</summary>
public static class AgentProtocol
{
    /// <summary>The TCP port the agent listens on inside the guest.</summary>
    public const int Port = 9119;

    /// <summary>The guest's address inside its network namespace (every VM has the same one).</summary>
    public const string GuestAddress = GuestNetwork.GuestAddress;

    /// <summary>The host's side of the guest link (tap0 in the VM's namespace): the only peer the guest's agent serves.</summary>
    public const string GatewayAddress = GuestNetwork.GatewayAddress;

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

        /// <summary><c>POST</c> a <see cref="ClockAdjustRequest"/>: the host keeps the guest's wall clock in step (docs/agent-api.md, "Guest clock").</summary>
        public const string Clock = "/clock";

        /// <summary><c>POST</c> a <see cref="RekeyRequest"/>: a snapshot clone takes its own identity.</summary>
        public const string Rekey = "/rekey";

        /// <summary><c>POST</c> an <see cref="ExecRequest"/>, answered with frames.</summary>
        public const string Exec = "/exec";

        /// <summary><c>GET</c> with a WebSocket upgrade; the first client message is a JSON <see cref="ExecRequest"/>,
        /// then frames both ways in binary messages.</summary>
        public const string ExecStream = "/exec/ws";

        /// <summary><c>GET</c> with a WebSocket upgrade and <c>?id=ID_OR_SESSION_NAME</c>: buffered output, then live.</summary>
        public const string ExecAttach = "/exec/attach";

        /// <summary><c>POST</c> an <see cref="ExecRequest"/> to start a detached exec (201 <see cref="ExecInfo"/>);
        /// <c>GET</c> lists execs (<see cref="ExecList"/>).</summary>
        public const string Execs = "/execs";

        /// <summary><c>POST</c> an <see cref="ExecSignalRequest"/>: signal an exec's process group.</summary>
        public const string ExecsSignal = "/execs/signal";

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

    /// <summary>The requested user is not supported (kept for old clients; see <see cref="UserNotFound"/>).</summary>
    public const string UserUnsupported = "USER_UNSUPPORTED";

    /// <summary>The requested user (or group) is not in the guest's /etc/passwd (/etc/group).</summary>
    public const string UserNotFound = "USER_NOT_FOUND";

    /// <summary>No exec or session with that id or name.</summary>
    public const string ExecNotFound = "EXEC_NOT_FOUND";

    /// <summary>The exec already exited (e.g. a signal sent too late).</summary>
    public const string ExecExited = "EXEC_EXITED";

    /// <summary>A limit (concurrent execs, sessions, viewers) is reached: HTTP 429.</summary>
    public const string LimitReached = "LIMIT_REACHED";

    /// <summary>The request is not a valid WebSocket upgrade.</summary>
    public const string UpgradeRequired = "UPGRADE_REQUIRED";

    /// <summary>The agent failed in an unexpected way.</summary>
    public const string Internal = "INTERNAL";
}
