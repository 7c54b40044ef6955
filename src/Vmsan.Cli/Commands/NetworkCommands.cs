using System.CommandLine;
using System.Globalization;
using Vmsan.Cli.Output;
using Vmsan.Core.State;
using Vmsan.Network.Policy;
using Vmsan.Network.Ports;

namespace Vmsan.Cli.Commands;

/// <summary>Network policy and published-port flags of create/run, and <c>vmsan network</c>.</summary>
public static class NetworkCommands
{
    internal sealed class CreateNetworkFlags
    {
        public readonly Option<string?> Policy = new("--network-policy") { Description = "Egress policy: allow-all (default), deny-all, custom (implied by any list)" };
        public readonly Option<string[]> AllowedDomains = new("--allowed-domain") { Description = "Allow this domain (custom policy; '*.example.com' for subdomains; repeatable)" };
        public readonly Option<string[]> AllowedCidrs = new("--allowed-cidr") { Description = "Allow this CIDR or address (custom policy; repeatable)" };
        public readonly Option<string[]> DeniedCidrs = new("--denied-cidr") { Description = "Deny this CIDR, even inside an allowed one (repeatable)" };
        public readonly Option<string[]> Publish = new("--publish-port", "-p") { Description = "Publish a guest port on the host: [ADDR:]HOST:GUEST[/tcp|/udp] (repeatable)" };

        public void AddTo(Command c)
        {
            foreach (var o in (Option[])[Policy, AllowedDomains, AllowedCidrs, DeniedCidrs, Publish])
                c.Options.Add(o);
        }

        /// <summary>A clone's policy and ports: replaced only by the flags that were given (none: the source's).</summary>
        public CloneOptions ApplyToClone(ParseResult p, CloneOptions o)
        {
            var policyGiven = ((Option[])[Policy, AllowedDomains, AllowedCidrs, DeniedCidrs]).Any(f => p.GetResult(f) is { Implicit: false });
            var portsGiven = p.GetResult(Publish) is { Implicit: false };
            return o with
            {
                NetworkPolicy = policyGiven ? EgressPolicy.Create(p.GetValue(Policy), p.GetValue(AllowedDomains), p.GetValue(AllowedCidrs), p.GetValue(DeniedCidrs)) : null,
                PublishedPorts = portsGiven ? [.. (p.GetValue(Publish) ?? []).Select(PortMapping.Parse)] : null,
            };
        }

        public CreateOptions Apply(ParseResult p, CreateOptions o) => o with
        {
            NetworkPolicy = EgressPolicy.Create(p.GetValue(Policy), p.GetValue(AllowedDomains), p.GetValue(AllowedCidrs), p.GetValue(DeniedCidrs)),
            PublishedPorts = [.. (p.GetValue(Publish) ?? []).Select(PortMapping.Parse)],
        };
    }

    public static Command Network(CommandContext ctx)
    {
        var cmd = new Command("network", "Show a VM's network policy with its refusal counters, or change it live (atomic, no restart)");
        var id = VmCommands.IdArg();
        var mode = new Option<string?>("--network-policy") { Description = "New mode: allow-all, deny-all (both drop the lists) or custom" };
        var addDomain = new Option<string[]>("--add-allowed-domain") { Description = "Allow a domain (repeatable)" };
        var removeDomain = new Option<string[]>("--remove-allowed-domain") { Description = "Stop allowing a domain (repeatable)" };
        var addCidr = new Option<string[]>("--add-allowed-cidr") { Description = "Allow a CIDR (repeatable)" };
        var removeCidr = new Option<string[]>("--remove-allowed-cidr") { Description = "Stop allowing a CIDR (repeatable)" };
        var addDenied = new Option<string[]>("--add-denied-cidr") { Description = "Deny a CIDR (repeatable)" };
        var removeDenied = new Option<string[]>("--remove-denied-cidr") { Description = "Stop denying a CIDR (repeatable)" };
        cmd.Arguments.Add(id);
        foreach (var o in (Option[])[mode, addDomain, removeDomain, addCidr, removeCidr, addDenied, removeDenied])
            cmd.Options.Add(o);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var vmId = p.GetValue(id)!;
            VmsanClient.ValidateId(vmId);
            var lists = new[] { addDomain, removeDomain, addCidr, removeCidr, addDenied, removeDenied }.Select(o => p.GetValue(o) ?? []).ToArray();
            var changing = p.GetValue(mode) is not null || lists.Any(l => l.Length > 0);
            var status = changing
                ? await ctx.Client.ChangeNetworkPolicyAsync(vmId, old => old.Change(p.GetValue(mode),
                    lists[0], lists[1], lists[2], lists[3], lists[4], lists[5]), ct).ConfigureAwait(false)
                : await ctx.Client.GetNetworkAsync(vmId, ct).ConfigureAwait(false);
            if (ctx.Console.Json)
            {
                ctx.Console.WriteJson(status, CliJsonContext.Default.NetworkStatus);
                return 0;
            }
            Print(ctx.Console.Out, status);
            return 0;
        }));
        return cmd;
    }

    private static void Print(TextWriter o, NetworkStatus s)
    {
        o.WriteLine($"policy:   {s.Policy}{(s.Applied ? "" : $" (VM {s.Status}: applied at its next start)")}");
        foreach (var (label, list) in (ReadOnlySpan<(string, string[])>)[("allowed domain", s.AllowedDomains), ("allowed cidr", s.AllowedCidrs), ("denied cidr", s.DeniedCidrs), ("published", s.PublishedPorts)])
            foreach (var e in list)
                o.WriteLine($"{label + ":",-16}{e}");
        o.WriteLine("always denied: 169.254.0.0/16, 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 0/8, 224/4, 240/4, the host's addresses, ::1, fc00::/7, fe80::/10, ff00::/8 (unless an allowed CIDR names them)");
        if (s.ApplyMs is { } ms)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"applied in {ms} ms; {s.ConnectionsCut ?? 0} established connection(s) cut"));
        foreach (var (name, packets) in s.Refusals.OrderBy(k => k.Key, StringComparer.Ordinal))
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-24}{packets} packets"));
    }

    /// <summary>The one-line summary list shows: mode plus list sizes, and published ports.</summary>
    internal static string Summary(VmInfo v)
    {
        var n = (v.AllowedDomains?.Length ?? 0) + (v.AllowedCidrs?.Length ?? 0) + (v.DeniedCidrs?.Length ?? 0);
        return n == 0 ? v.NetworkPolicy : string.Create(CultureInfo.InvariantCulture, $"{v.NetworkPolicy}({n})");
    }

    internal static string Ports(VmInfo v) => v.PublishedPorts is { Length: > 0 } p ? string.Join(",", p) : "-";
}
