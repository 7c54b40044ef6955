using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Serialization.Metadata;
using Vmsan.Core.Errors;

namespace Vmsan.Vmm.Firecracker;

/// <summary>
/// Firecracker's REST API on its Unix socket: the pre-boot configuration (boot source, drives,
/// machine config, network interfaces, logger, metrics), InstanceStart, pause/resume
/// (<c>PATCH /vm</c>), snapshot create/load and SendCtrlAltDel. A failed call throws VMM_FAILED
/// with Firecracker's <c>fault_message</c>.
/// </summary>
public sealed class FirecrackerApiClient : IDisposable
{
    private readonly HttpClient _http;

    public FirecrackerApiClient(string apiSocket)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(apiSocket), ct).ConfigureAwait(false);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://localhost/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    private static FirecrackerJsonContext Json => FirecrackerJsonContext.Default;

    public Task PutBootSourceAsync(FcBootSource body, CancellationToken ct) => SendAsync(HttpMethod.Put, "boot-source", body, Json.FcBootSource, ct);

    public Task PutDriveAsync(FcDrive body, CancellationToken ct) => SendAsync(HttpMethod.Put, $"drives/{Uri.EscapeDataString(body.DriveId)}", body, Json.FcDrive, ct);

    public Task PutMachineConfigAsync(FcMachineConfig body, CancellationToken ct) => SendAsync(HttpMethod.Put, "machine-config", body, Json.FcMachineConfig, ct);

    public Task PutNetworkInterfaceAsync(FcNetworkInterface body, CancellationToken ct) =>
        SendAsync(HttpMethod.Put, $"network-interfaces/{Uri.EscapeDataString(body.IfaceId)}", body, Json.FcNetworkInterface, ct);

    public Task PutLoggerAsync(FcLogger body, CancellationToken ct) => SendAsync(HttpMethod.Put, "logger", body, Json.FcLogger, ct);

    public Task PutMetricsAsync(FcMetrics body, CancellationToken ct) => SendAsync(HttpMethod.Put, "metrics", body, Json.FcMetrics, ct);

    public Task InstanceStartAsync(CancellationToken ct) => SendAsync(HttpMethod.Put, "actions", new FcAction("InstanceStart"), Json.FcAction, ct);

    /// <summary>x86 only: the guest sees Ctrl-Alt-Del (i8042) and reboots, which with <c>reboot=k</c> ends Firecracker.</summary>
    public Task SendCtrlAltDelAsync(CancellationToken ct) => SendAsync(HttpMethod.Put, "actions", new FcAction("SendCtrlAltDel"), Json.FcAction, ct);

    public Task PauseAsync(CancellationToken ct) => SendAsync(HttpMethod.Patch, "vm", new FcVmState("Paused"), Json.FcVmState, ct);

    public Task ResumeAsync(CancellationToken ct) => SendAsync(HttpMethod.Patch, "vm", new FcVmState("Resumed"), Json.FcVmState, ct);

    /// <summary>A full snapshot of a paused VM: device state to <c>snapshot_path</c>, guest memory to <c>mem_file_path</c>.</summary>
    public Task CreateSnapshotAsync(FcSnapshotCreate body, CancellationToken ct) => SendAsync(HttpMethod.Put, "snapshot/create", body, Json.FcSnapshotCreate, ct);

    /// <summary>
    /// Loads a snapshot into a fresh Firecracker. A <c>File</c> memory backend is mapped
    /// MAP_PRIVATE by Firecracker: clones share the file's pages copy-on-write and never write it.
    /// </summary>
    public Task LoadSnapshotAsync(string snapshotPath, string memFilePath, bool resume, CancellationToken ct) =>
        SendAsync(HttpMethod.Put, "snapshot/load", new FcSnapshotLoad(snapshotPath, new FcMemoryBackend("File", memFilePath), resume), Json.FcSnapshotLoad, ct);

    /// <summary><c>GET /</c>: the instance's state ("Not started", "Running", "Paused").</summary>
    public async Task<FcInstanceInfo> DescribeAsync(CancellationToken ct)
    {
        using var resp = await _http.GetAsync(new Uri("/", UriKind.Relative), ct).ConfigureAwait(false);
        await ThrowIfFailedAsync(resp, "GET /", ct).ConfigureAwait(false);
        return await resp.Content.ReadFromJsonAsync(Json.FcInstanceInfo, ct).ConfigureAwait(false)
               ?? throw new VmsanException(ErrorCode.VmmFailed, "Firecracker answered GET / with an empty body.");
    }

    private async Task SendAsync<T>(HttpMethod method, string path, T body, JsonTypeInfo<T> type, CancellationToken ct)
    {
        // Serialized up front: JsonContent streams with chunked transfer encoding, which
        // Firecracker's HTTP server does not take (it needs Content-Length).
        var content = new ByteArrayContent(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(body, type));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var req = new HttpRequestMessage(method, new Uri("/" + path, UriKind.Relative)) { Content = content };
        HttpResponseMessage resp;
        try
        {
            resp = await _http.SendAsync(req, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new VmsanException(ErrorCode.VmmFailed, $"Firecracker API {method} /{path} failed: {ex.Message}", "See the VM's firecracker log.", ex);
        }
        using (resp)
            await ThrowIfFailedAsync(resp, $"{method} /{path}", ct).ConfigureAwait(false);
    }

    private static async Task ThrowIfFailedAsync(HttpResponseMessage resp, string what, CancellationToken ct)
    {
        if (resp.IsSuccessStatusCode)
            return;
        string? fault = null;
        try
        {
            fault = (await resp.Content.ReadFromJsonAsync(Json.FcError, ct).ConfigureAwait(false))?.FaultMessage;
        }
        catch (System.Text.Json.JsonException)
        {
        }
        throw new VmsanException(ErrorCode.VmmFailed, $"Firecracker refused {what} ({(int)resp.StatusCode}): {fault ?? resp.ReasonPhrase}",
            "See the VM's firecracker log.");
    }

    public void Dispose() => _http.Dispose();
}
