using System.Text.Json.Serialization;
using Vmsan.Diagnostics;

namespace Vmsan.Cli.Output;

public sealed record ErrorBody(string Code, string Message, string? Fix);

public sealed record ErrorEnvelope(ErrorBody Error);

public sealed record RemovedResult(IReadOnlyList<string> Removed);

public sealed record StoppedResult(IReadOnlyList<VmInfo> Stopped);

public sealed record ExecJsonResult(int ExitCode, int? Signal, bool TimedOut, string Stdout, string Stderr);

public sealed record RunJsonResult(string Id, bool Removed, int ExitCode, string Stdout, string Stderr);

public sealed record LogsResult(string Id, string Console);

public sealed record NetworkLogsResult(string Id, IReadOnlyList<Vmsan.Network.Logging.NetworkEvent> Network);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(VmInfo))]
[JsonSerializable(typeof(List<VmInfo>))]
[JsonSerializable(typeof(RemovedResult))]
[JsonSerializable(typeof(StoppedResult))]
[JsonSerializable(typeof(ExecJsonResult))]
[JsonSerializable(typeof(RunJsonResult))]
[JsonSerializable(typeof(LogsResult))]
[JsonSerializable(typeof(Vmsan.Core.State.SnapshotManifest))]
[JsonSerializable(typeof(List<Vmsan.Core.State.SnapshotManifest>))]
[JsonSerializable(typeof(NetworkLogsResult))]
[JsonSerializable(typeof(NetworkStatus))]
[JsonSerializable(typeof(DoctorReport))]
[JsonSerializable(typeof(ImageInfo))]
[JsonSerializable(typeof(List<ImageInfo>))]
[JsonSerializable(typeof(PruneResult))]
[JsonSerializable(typeof(Vmsan.Runtimes.RuntimeInfo))]
[JsonSerializable(typeof(List<Vmsan.Runtimes.RuntimeInfo>))]
[JsonSerializable(typeof(Vmsan.Runtimes.RuntimePruneResult))]
[JsonSerializable(typeof(Commands.VersionReport))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
