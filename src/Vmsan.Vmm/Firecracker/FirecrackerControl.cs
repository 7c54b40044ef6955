namespace Vmsan.Vmm.Firecracker;

/// <summary>
/// <see cref="IVmmControl"/> over Firecracker's API. Firecracker has no "quit" call: graceful
/// power-off is SendCtrlAltDel (the guest's i8042 reset ends Firecracker), and the caller kills
/// the process after its deadline, as it does for QEMU.
/// </summary>
public sealed class FirecrackerControl(FirecrackerApiClient api) : IVmmControl
{
    public FirecrackerApiClient Api { get; } = api;

    public Task PowerdownAsync(CancellationToken ct) => Api.SendCtrlAltDelAsync(ct);

    public Task QuitAsync(CancellationToken ct) => Api.SendCtrlAltDelAsync(ct);

    public Task PauseAsync(CancellationToken ct) => Api.PauseAsync(ct);

    public Task ResumeAsync(CancellationToken ct) => Api.ResumeAsync(ct);

    public Task CreateSnapshotAsync(string snapshotPath, string memFilePath, CancellationToken ct) =>
        Api.CreateSnapshotAsync(new FcSnapshotCreate(snapshotPath, memFilePath, "Full"), ct);

    public Task LoadSnapshotAsync(string snapshotPath, string memFilePath, bool resume, CancellationToken ct) =>
        Api.LoadSnapshotAsync(snapshotPath, memFilePath, resume, ct);

    // QEMU's migration-stream and disk-freeze calls have no Firecracker equivalent: its snapshots are files written
    // and read by Firecracker itself (FirecrackerSnapshot: snapshot/create, snapshot/load at launch).
    public Task SaveStateAsync(string uri, CancellationToken ct) => throw NotYet();

    public Task LoadStateAsync(string uri, Func<CancellationToken, Task> feed, CancellationToken ct) => throw NotYet();

    public async Task<string> VersionAsync(CancellationToken ct) =>
        "firecracker " + ((await Api.DescribeAsync(ct).ConfigureAwait(false)).VmmVersion ?? "unknown");

    public Task FreezeDiskAsync(string newTop, CancellationToken ct) => throw NotYet();

    private static Vmsan.Core.Errors.VmsanException NotYet() =>
        new(Vmsan.Core.Errors.ErrorCode.SnapshotIncompatible, "Firecracker has no migration stream or disk freeze: its snapshots go through snapshot/create and snapshot/load.",
            "Use `vmsan snapshot create` and `vmsan create --snapshot`, which drive Firecracker's own snapshot calls.");

    public async Task<string> QueryStatusAsync(CancellationToken ct) =>
        (await Api.DescribeAsync(ct).ConfigureAwait(false)).State switch
        {
            "Running" => "running",
            "Paused" => "paused",
            "Not started" => "prelaunch",
            var s => s?.ToLowerInvariant() ?? "unknown",
        };

    public ValueTask DisposeAsync()
    {
        Api.Dispose();
        return ValueTask.CompletedTask;
    }
}
