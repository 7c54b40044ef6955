using CsCheck;
using Vmsan.Agent.Protocol;
using Vmsan.Core.State;

namespace Vmsan.UnitTests.Images;

public class ImageExecDefaultsTests
{
    private static readonly VmImage Image = new()
    {
        Name = "localhost:5000/app:1", ManifestDigest = "sha256:" + new string('a', 64),
        Env = ["PATH=/opt/bin:/bin", "FOO=image", "EMPTY=", "NOEQUALS"], WorkingDir = "/work", User = "app",
    };

    [Fact]
    public void Image_env_workdir_and_user_are_the_defaults_of_an_exec()
    {
        var r = ImageExecDefaults.Apply(Image, new ExecRequest(["env"]));
        Assert.Equal("/opt/bin:/bin", r.Env!["PATH"]);
        Assert.Equal("image", r.Env["FOO"]);
        Assert.Equal("", r.Env["EMPTY"]);
        Assert.False(r.Env.ContainsKey("NOEQUALS"));
        Assert.Equal("/work", r.Cwd);
        Assert.Equal("app", r.User);
    }

    [Fact]
    public void A_vm_without_an_image_gets_the_request_unchanged()
    {
        var req = new ExecRequest(["true"], null, null, null);
        Assert.Same(req, ImageExecDefaults.Apply(null, req));
    }

    [Fact]
    public void The_request_wins_over_the_image_for_every_key_cwd_and_user()
    {
        var gen = Gen.Select(Gen.Dictionary(Gen.String["ABCFOPATH"], Gen.String)[0, 4], Gen.String["/abc"].Null(), Gen.String["abcroot"].Null());
        gen.Sample((env, cwd, user) =>
        {
            var env2 = env.Where(kv => kv.Key.Length > 0).ToDictionary();
            var r = ImageExecDefaults.Apply(Image, new ExecRequest(["x"], env2, cwd, user));
            foreach (var (k, v) in env2)
                Assert.Equal(v, r.Env![k]);
            foreach (var e in Image.Env!.Where(e => e.IndexOf('=') > 0))
            {
                var k = e[..e.IndexOf('=')];
                if (!env2.ContainsKey(k))
                    Assert.Equal(e[(e.IndexOf('=') + 1)..], r.Env![k]);
            }
            Assert.Equal(string.IsNullOrEmpty(cwd) ? "/work" : cwd, r.Cwd);
            Assert.Equal(string.IsNullOrEmpty(user) ? "app" : user, r.User);
        });
    }
}
