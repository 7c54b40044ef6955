// A C# program driving vmsan as a library: create a VM, run a command in it, remove it.
// Run as root on a host where ./install.sh has run:  dotnet run --project samples/Vmsan.Sample
using Vmsan;
using Vmsan.Agent.Protocol;

var client = new VmsanClient(new VmsanClientOptions { Log = m => Console.Error.WriteLine($"vmsan: {m}") });
var vm = await client.CreateAsync(new CreateOptions { MemoryMib = 256 });
Console.Error.WriteLine($"created {vm.Id} in {vm.BootMs} ms");
try
{
    await using var stdout = Console.OpenStandardOutput();
    await using var stderr = Console.OpenStandardError();
    var result = await client.ExecAsync(vm.Id, new ExecRequest(["uname", "-a"]), stdout, stderr);
    Console.Error.WriteLine($"exit code {result.ExitCode}");
}
finally
{
    await client.RemoveAsync(vm.Id, force: true);
}
