using System.Text.Json.Serialization;

namespace Vmsan.Vmm.Firecracker;

// Request bodies of the Firecracker API (v1.x), the fields vmsan sends. Names per its OpenAPI definitions.
public sealed record FcBootSource(string KernelImagePath, string? BootArgs = null, string? InitrdPath = null);

public sealed record FcDrive(string DriveId, bool IsRootDevice, string PathOnHost, bool IsReadOnly = false, string? CacheType = null, string? IoEngine = null);

public sealed record FcMachineConfig(int VcpuCount, int MemSizeMib, bool? Smt = null, bool? TrackDirtyPages = null);

public sealed record FcNetworkInterface(string IfaceId, string HostDevName, string? GuestMac = null);

public sealed record FcLogger(string LogPath, string? Level = null, bool? ShowLevel = null, bool? ShowLogOrigin = null);

public sealed record FcMetrics(string MetricsPath);

public sealed record FcAction(string ActionType);

public sealed record FcVmState(string State);

public sealed record FcSnapshotCreate(string SnapshotPath, string MemFilePath, string? SnapshotType = null);

public sealed record FcMemoryBackend(string BackendType, string BackendPath);

public sealed record FcSnapshotLoad(string SnapshotPath, FcMemoryBackend MemBackend, bool? ResumeVm = null, bool? TrackDirtyPages = null);

public sealed record FcError(string? FaultMessage);

public sealed record FcInstanceInfo(string? Id, string? State, string? VmmVersion, string? AppName);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(FcBootSource))]
[JsonSerializable(typeof(FcDrive))]
[JsonSerializable(typeof(FcMachineConfig))]
[JsonSerializable(typeof(FcNetworkInterface))]
[JsonSerializable(typeof(FcLogger))]
[JsonSerializable(typeof(FcMetrics))]
[JsonSerializable(typeof(FcAction))]
[JsonSerializable(typeof(FcVmState))]
[JsonSerializable(typeof(FcSnapshotCreate))]
[JsonSerializable(typeof(FcSnapshotLoad))]
[JsonSerializable(typeof(FcError))]
[JsonSerializable(typeof(FcInstanceInfo))]
public sealed partial class FirecrackerJsonContext : JsonSerializerContext;
