using Vmsan.Diagnostics;

namespace Vmsan.UnitTests.Diagnostics;

public sealed class DoctorTests
{
    [Fact]
    public void A_forward_drop_policy_in_another_table_is_reported()
    {
        const string ruleset = """
            table ip filter {
            	chain FORWARD {
            		type filter hook forward priority filter; policy drop;
            		counter packets 0 bytes 0 jump DOCKER-USER
            	}
            }
            table ip vmsan {
            	chain forward {
            		type filter hook forward priority filter; policy drop;
            	}
            }
            """;
        Assert.Equal(["ip filter FORWARD"], Doctor.ForwardDropChains(ruleset));
    }

    [Fact]
    public void Accepting_forward_chains_are_fine()
    {
        const string ruleset = """
            table inet fw {
            	chain fwd_in {
            		type filter hook forward priority 0; policy accept;
            	}
            	chain input {
            		type filter hook input priority 0; policy drop;
            	}
            }
            """;
        Assert.Empty(Doctor.ForwardDropChains(ruleset));
    }
}

public sealed class DoctorAccelTests
{
    [Fact]
    public async Task Doctor_detects_the_accelerator_once_per_run()
    {
        // Each detection probes /dev/kvm first: count the probes of a whole run against one detection's.
        var probes = 0;
        var detector = new Vmsan.Vmm.AccelDetector(p => { if (p == "/dev/kvm") Interlocked.Increment(ref probes); return false; }, _ => null, _ => false);
        detector.Detect("auto");
        var perDetection = probes;
        probes = 0;
        // A state home that cannot be created: the checks run, the repairs (which act on the home's VMs) do not.
        using var client = new VmsanClient(new VmsanClientOptions { Home = "/proc/vmsan-doctor-test", AccelDetector = detector });

        var report = await new Vmsan.Diagnostics.Doctor(client).RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, perDetection);
        Assert.Equal(perDetection, probes);
        Assert.Contains(report.Checks, c => c.Name == "accelerator" && c.Detail.StartsWith("tcg", StringComparison.Ordinal));
        Assert.Contains(report.Checks, c => c.Name == "state directory" && !c.Ok);
    }
}
