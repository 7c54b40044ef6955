using System.Text.Json;
using Vmsan.IntegrationTests.Infrastructure;

namespace Vmsan.IntegrationTests;

/// <summary>
/// The python3.13 and node22 runtimes on real VMs, one VM each, used as the default user. test.sh builds
/// both (`./install.sh --no-demo --runtime python3.13 --runtime node22`, a no-op when their inputs did not
/// change); a class run on a machine where they are not built fails and says how to build them.
/// </summary>
[TestMethodOrderer(typeof(DeclarationOrderer))]
public sealed class RuntimeTests(RuntimeTests.Vms vms) : IClassFixture<RuntimeTests.Vms>
{
    public sealed class Vms : IAsyncLifetime
    {
        public VmsanWorld World { get; } = new();
        public JsonElement Runtimes { get; private set; }
        public string Python { get; private set; } = "";
        public string Node { get; private set; } = "";

        public async ValueTask InitializeAsync()
        {
            await World.InitializeAsync();
            Runtimes = await World.VmsanJson("runtimes");
            foreach (var name in (string[])["python3.13", "node22"])
                if (!Find(Runtimes, name).GetProperty("built").GetBoolean())
                    throw new InvalidOperationException($"Runtime {name} is not built in $VMSAN_ASSETS: run ./install.sh --no-demo --runtime {name} (test.sh does).");
            // Both boots at once: each is a TCG boot of a few seconds, mostly CPU-bound in QEMU.
            var py = World.CreateVm("--runtime", "python3.13");
            var node = World.CreateVm("--runtime", "node22");
            Python = await py;
            Node = await node;
        }

        public ValueTask DisposeAsync() => World.DisposeAsync();
    }

    private VmsanWorld W => vms.World;

    private static JsonElement Find(JsonElement list, string name) =>
        list.EnumerateArray().Single(r => r.GetProperty("name").GetString() == name);

    [Fact]
    public void Runtimes_json_shows_both_built_and_up_to_date_with_version_size_and_recipe_digest()
    {
        var baseContent = Find(vms.Runtimes, "base").GetProperty("contentBytes").GetInt64();
        foreach (var (name, version) in (ReadOnlySpan<(string, string)>)[("python3.13", "Python 3.13."), ("node22", "v22.")])
        {
            var r = Find(vms.Runtimes, name);
            Assert.True(r.GetProperty("built").GetBoolean(), r.ToString());
            Assert.True(r.GetProperty("upToDate").GetBoolean(), r.ToString());
            Assert.StartsWith(version, r.GetProperty("version").GetString());
            Assert.Matches("^sha256:[0-9a-f]{64}$", r.GetProperty("recipeDigest").GetString());
            Assert.True(r.GetProperty("sizeBytes").GetInt64() > 0, r.ToString());
            // python3 + pip + venv, or node + npm, over the base's minbase: tens of MiB more than base.
            Assert.InRange(r.GetProperty("contentBytes").GetInt64(), baseContent + (20L << 20), 1L << 30);
        }
    }

    [Fact]
    public async Task Python_is_3_13_for_the_default_user()
    {
        var r = await W.Vmsan("exec", vms.Python, "sh", "-c", "whoami; python3 --version");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Matches(@"^user\nPython 3\.13\.\d+\n$", r.Stdout);
    }

    [Fact]
    public async Task A_venv_made_by_the_default_user_has_a_working_pip()
    {
        // ensurepip installs and byte-compiles pip into the venv: minutes under TCG on a loaded 2-core machine.
        var r = await W.VmsanWithTimeout(TimeSpan.FromMinutes(10), "exec", vms.Python, "sh", "-c",
            "python3 -m venv /tmp/v && /tmp/v/bin/pip --version && /tmp/v/bin/python -c 'import sys; print(sys.prefix)' && stat -c %U /tmp/v");
        Assert.True(r.ExitCode == 0, r.ToString());
        // pip X.Y from /tmp/v/lib/python3.13/site-packages/pip (python 3.13)
        Assert.Matches(@"^pip \d+\.\d+.* from /tmp/v/lib/python3\.13/site-packages/pip \(python 3\.13\)\n/tmp/v\nuser\n$", r.Stdout);
    }

    [Fact]
    public async Task Node_is_22_and_runs_a_script_for_the_default_user()
    {
        var r = await W.Vmsan("exec", vms.Node, "sh", "-c", "whoami; node --version; node -e 'console.log(1+1)'");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Matches(@"^user\nv22\.\d+\.\d+\n2\n$", r.Stdout);
    }

    [Fact]
    public async Task Npm_and_npx_work_for_the_default_user()
    {
        var r = await W.Vmsan("exec", vms.Node, "sh", "-c", "npm --version && npx --version && npm config get prefix");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Matches(@"^10\.\d+\.\d+\n10\.\d+\.\d+\n/usr/local\n$", r.Stdout);
    }

    [Fact]
    public async Task Npm_installs_a_local_package_offline_for_the_default_user()
    {
        // No registry is reachable from the test world: pack a package inside the guest and install the tarball.
        var r = await W.Vmsan("exec", "-w", "/home/user", vms.Node, "sh", "-c", """
            set -e
            mkdir -p /tmp/pkg/hello && cd /tmp/pkg/hello
            printf '{"name":"hello","version":"1.0.0","main":"index.js"}' > package.json
            echo 'module.exports = () => "hi from hello";' > index.js
            npm pack --silent >/dev/null
            mkdir -p /home/user/app && cd /home/user/app && echo '{}' > package.json
            npm install --offline --no-audit --no-fund --silent /tmp/pkg/hello/hello-1.0.0.tgz
            node -e 'console.log(require("hello")())'
            """);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.EndsWith("hi from hello\n", r.Stdout);
    }
}
