using System.Text.Json.Serialization;

namespace Vmsan.Core.State;

/// <summary>Lifecycle states. Only <see cref="Running"/> is ever trusted without checking the VMM process.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VmStatus>))]
public enum VmStatus
{
    [JsonStringEnumMemberName("creating")] Creating,
    [JsonStringEnumMemberName("starting")] Starting,
    [JsonStringEnumMemberName("running")] Running,
    /// <summary>vCPUs stopped (QMP <c>stop</c>), memory kept in the live VMM; the VMM process is alive.</summary>
    [JsonStringEnumMemberName("paused")] Paused,
    [JsonStringEnumMemberName("stopping")] Stopping,
    [JsonStringEnumMemberName("stopped")] Stopped,
    [JsonStringEnumMemberName("error")] Error,
}

/// <summary>A process we own, identified by pid and kernel start time so a recycled pid never fools us.</summary>
public sealed record ProcessRef(int Pid, long StartTime);

public sealed record VmNetwork
{
    public required int Slot { get; init; }
    public required string Netns { get; init; }
    public required string HostVeth { get; init; }
    public required string HostIp { get; init; }
    public required string NsIp { get; init; }
    public required string GuestIp { get; init; }
    public required string GatewayIp { get; init; }
    public string? Dns { get; init; }
    public string Policy { get; init; } = "allow-all";
}

public sealed record VmError(string Code, string Message);

/// <summary>The state file of one VM (<c>vms/ID/vm.json</c>). Written atomically, under the VM's lock.</summary>
public sealed record VmRecord
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    public required string Id { get; init; }
    public required VmStatus Status { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMib { get; init; }
    public required int DiskMib { get; init; }
    public required string Runtime { get; init; }
    public required string Kernel { get; init; }
    public required string Initrd { get; init; }
    public required string BaseImage { get; init; }
    public required string Accel { get; init; }
    public string Backend { get; init; } = "qemu-microvm";
    public required VmNetwork Network { get; init; }
    public ProcessRef? Supervisor { get; init; }
    public ProcessRef? Vmm { get; init; }
    public VmError? Error { get; init; }
    public string? StopReason { get; init; }
    public int? BootMs { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VmRecord))]
[JsonSerializable(typeof(VmSecrets))]
public sealed partial class StateJsonContext : JsonSerializerContext;

/// <summary>Kept apart from <see cref="VmRecord"/> in a 0600 file so listing VMs never prints the token.</summary>
public sealed record VmSecrets(string Token);
