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
