using System.Text.Json.Serialization;

namespace Vmsan.Agent.Protocol.Files;

/// <summary>File transfer endpoints (see docs/agent-api.md, "Files").</summary>
public static class FilesProtocol
{
    /// <summary>
    /// <c>PUT /files?path=DIR[&amp;user=NAME]</c> with a tar body extracts it under DIR (created when missing);
    /// <c>GET /files?path=PATH[&amp;user=NAME]</c> answers a tar stream of a file or a directory.
    /// </summary>
    public const string Path = "/files";

    /// <summary>Content type of tar bodies.</summary>
    public const string TarContentType = "application/x-tar";

    /// <summary>Error codes of the files endpoints (besides <see cref="AgentErrorCodes"/>; an unknown user is
    /// <see cref="AgentErrorCodes.UserNotFound"/>, as for exec).</summary>
    public static class Errors
    {
        /// <summary>The archive holds an entry the agent refuses (unsafe path, device file, bad link...).</summary>
        public const string UnsafeEntry = "UNSAFE_ENTRY";

        /// <summary>The body is not a readable tar archive.</summary>
        public const string BadArchive = "BAD_ARCHIVE";

        /// <summary>The path to download does not exist.</summary>
        public const string PathNotFound = "PATH_NOT_FOUND";

        /// <summary>Too many transfers are running (HTTP 429).</summary>
        public const string TooManyTransfers = "TOO_MANY_TRANSFERS";

        /// <summary>The request's user may not read the path to download (HTTP 409).</summary>
        public const string PermissionDenied = "PERMISSION_DENIED";

        /// <summary>The path to download is a device, FIFO or socket, or a file of a pseudo file system such as /proc (HTTP 400).</summary>
        public const string UnsupportedFile = "UNSUPPORTED_FILE";

        /// <summary>The file system refused a write (full disk, read-only, a directory in the way...).</summary>
        public const string WriteFailed = "WRITE_FAILED";
    }
}

/// <summary>What an extraction (upload) or a packing (download) moved.</summary>
/// <param name="Files">Regular files (hard links included).</param>
/// <param name="Directories">Directories created or updated.</param>
/// <param name="Symlinks">Symbolic links.</param>
/// <param name="Bytes">Bytes of file data.</param>
public sealed record TransferSummary(long Files, long Directories, long Symlinks, long Bytes);

/// <summary>Source-generated JSON for the files endpoints.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(TransferSummary))]
public sealed partial class FilesJsonContext : JsonSerializerContext;
