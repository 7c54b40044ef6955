// A C# program driving vmsan as a library, without the vmsan CLI: it hosts the VM's supervisor itself
// (VmsanSupervisorHost), creates a VM, runs a command with its stdout and stderr streamed apart, streams stdin
// into another, uploads a directory, downloads it back, stops and removes the VM. It prints one JSON line with
// what it saw (the integration tests run it and check that line).
// Run as root on a host where ./install.sh has run:  dotnet run --project samples/Vmsan.Sample
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vmsan;
using Vmsan.Errors;

// vmsan drives Linux machinery (namespaces, TAP, KVM): the SDK is marked Linux-only, and this guard is what tells the
// platform analyzer (CA1416) that everything below runs on Linux.
if (!OperatingSystem.IsLinux())
{
    Console.Error.WriteLine("vmsan runs on Linux only.");
    return 1;
}

// First thing: when the library re-executes this program as a VM's supervisor, be that supervisor.
if (await VmsanSupervisorHost.RunIfRequestedAsync(args) is { } supervisorExit)
    return supervisorExit;

using var client = new VmsanClient(new VmsanClientOptions { Log = m => Console.Error.WriteLine($"vmsan: {m}") });
var vm = await client.CreateAsync(new CreateOptions { MemoryMib = 256 });
Console.Error.WriteLine($"created {vm.Id} in {vm.BootMs} ms");
var work = Directory.CreateTempSubdirectory("vmsan-sample-");
await using var report = new MemoryStream();
await using (var json = new Utf8JsonWriter(report))
{
    json.WriteStartObject();
    json.WriteString("id", vm.Id);
    try
    {
        // Output is streamed into the caller's streams as the command runs; stdout and stderr stay apart.
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var result = await client.ExecAsync(vm.Id, new ExecRequest(["sh", "-c", "echo out; echo err >&2; exit 3"]), stdout, stderr);
        json.WriteNumber("exitCode", result.ExitCode);
        json.WriteString("stdout", Encoding.UTF8.GetString(stdout.ToArray()));
        json.WriteString("stderr", Encoding.UTF8.GetString(stderr.ToArray()));

        // An interactive exec: stdin goes in while its output comes back.
        await using (var exec = await client.OpenExecAsync(vm.Id, new ExecRequest(["tr", "a-z", "A-Z"], Stdin: true)))
        {
            using var upper = new MemoryStream();
            var copy = exec.CopyOutputAsync(upper, null);
            await exec.WriteStdinAsync("hello from the sample"u8.ToArray());
            await exec.CloseStdinAsync();
            var trResult = await copy;
            json.WriteString("stdinRoundTrip", Encoding.UTF8.GetString(upper.ToArray()));
            json.WriteNumber("stdinExitCode", trResult.ExitCode);
        }

        // Files: a directory up, checked in the guest, and back down.
        var source = Directory.CreateDirectory(Path.Combine(work.FullName, "data")).FullName;
        var blob = RandomNumberGenerator.GetBytes(300 * 1024);
        await File.WriteAllBytesAsync(Path.Combine(source, "blob.bin"), blob);
        var up = await client.UploadAsync(vm.Id, [source], "/tmp");
        json.WriteNumber("uploadedFiles", up.Files);
        json.WriteNumber("uploadedBytes", up.Bytes);
        using var sum = new MemoryStream();
        await client.ExecAsync(vm.Id, new ExecRequest(["sha256sum", "/tmp/data/blob.bin"]), sum, null);
        json.WriteString("guestSha256", Encoding.UTF8.GetString(sum.ToArray()).Split(' ')[0]);
        json.WriteString("localSha256", Convert.ToHexStringLower(SHA256.HashData(blob)));
        var back = Path.Combine(work.FullName, "back");
        var down = await client.DownloadAsync(vm.Id, "/tmp/data", back);
        json.WriteNumber("downloadedBytes", down.Bytes);
        json.WriteBoolean("downloadMatches", (await File.ReadAllBytesAsync(Path.Combine(back, "blob.bin"))).AsSpan().SequenceEqual(blob));

        var stopped = await client.StopAsync(vm.Id);
        json.WriteString("statusAfterStop", stopped.Status);
    }
    finally
    {
        await client.RemoveAsync(vm.Id, force: true);
        work.Delete(recursive: true);
    }

    // Every failure is a VmsanException with the CLI's code.
    try
    {
        await client.ExecAsync(vm.Id, new ExecRequest(["true"]), null, null);
        json.WriteString("afterRemove", "no error");
    }
    catch (VmsanException e)
    {
        json.WriteString("afterRemove", e.Code.ToWire());
    }
    json.WriteEndObject();
}
Console.WriteLine(Encoding.UTF8.GetString(report.ToArray()));
return 0;
