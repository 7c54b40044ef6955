using System.CommandLine;
using System.Globalization;
using Vmsan.Cli.Output;
using Vmsan.Cli.Progress;
using Vmsan.Core.Errors;
using Vmsan.Images;
using Vmsan.Images.Model;
using Vmsan.Images.Registry;

namespace Vmsan.Cli.Commands;

/// <summary><c>vmsan images</c>: the OCI image cache (pull, list, rm, prune).</summary>
public static class ImageCommands
{
    /// <summary>How to reach a registry; shared by <c>images pull</c>, <c>create</c> and <c>run</c>.</summary>
    internal sealed class PullFlags
    {
        public readonly Option<string?> Platform = new("--platform") { Description = "Platform to pull from a multi-platform image (os/arch[/variant]); default linux/amd64" };
        public readonly Option<bool> Insecure = new("--insecure-registry") { Description = "Talk plain HTTP to the registry (e.g. localhost:5000)" };
        public readonly Option<string?> User = new("--registry-user") { Description = "Registry user name (the password is read from stdin with --registry-password-stdin)" };
        public readonly Option<bool> PasswordStdin = new("--registry-password-stdin") { Description = "Read the registry password from stdin" };

        public Option[] Options => [Platform, Insecure, User, PasswordStdin];

        public void AddTo(Command c)
        {
            foreach (var o in Options)
                c.Options.Add(o);
        }

        /// <summary>Checks the flags without side effects (stdin is read by <see cref="Read"/>).</summary>
        public void Validate(ParseResult p)
        {
            if (p.GetValue(Platform) is { } platform)
                Manifests.ParsePlatform(platform);
            if ((p.GetValue(User) is not null) != p.GetValue(PasswordStdin))
                throw VmsanException.Invalid("--registry-user and --registry-password-stdin go together.",
                    "Pass both: echo \"$PASSWORD\" | vmsan images pull --registry-user NAME --registry-password-stdin REF.");
        }

        public ImagePullOptions Read(ParseResult p)
        {
            Validate(p);
            string? password = null;
            if (p.GetValue(User) is not null)
            {
                password = System.Console.In.ReadToEnd().TrimEnd('\r', '\n');
                if (password.Length == 0)
                    throw VmsanException.Invalid("--registry-password-stdin read an empty password.", "Pipe the password into vmsan.");
            }
            return new ImagePullOptions
            {
                Platform = p.GetValue(Platform),
                InsecureRegistry = p.GetValue(Insecure),
                Username = p.GetValue(User),
                Password = password,
            };
        }
    }

    private static Argument<string> RefArg() => new("image") { Description = "Image: NAME[:TAG|@DIGEST], docker-archive:FILE, oci:DIR[:TAG], oci-archive:FILE[:TAG]" };

    public static Command Images(CommandContext ctx)
    {
        var cmd = new Command("images", "The OCI image cache: list (default), pull, rm, prune");
        cmd.SetAction((p, ct) => ctx.RunAsync(() => Task.FromResult(ListImages(ctx))));
        var ls = new Command("ls", "List cached images");
        ls.Aliases.Add("list");
        ls.SetAction((p, ct) => ctx.RunAsync(() => Task.FromResult(ListImages(ctx))));
        cmd.Subcommands.Add(ls);
        cmd.Subcommands.Add(Pull(ctx));
        cmd.Subcommands.Add(Remove(ctx));
        cmd.Subcommands.Add(Prune(ctx));
        return cmd;
    }

    private static int ListImages(CommandContext ctx)
    {
        var images = ctx.Client.ListImages();
        if (ctx.Console.Json)
        {
            ctx.Console.WriteJson(images.ToList(), CliJsonContext.Default.ListImageInfo);
            return 0;
        }
        Table.Write(ctx.Console.Out, ["NAME", "DIGEST", "PLATFORM", "SIZE", "ROOTFS", "PORTS", "PULLED"],
            images.Select(i => (IReadOnlyList<string>)[
                i.Name, i.ManifestDigest.Length > 19 ? i.ManifestDigest[..19] : i.ManifestDigest, i.Platform, Mib(i.SizeBytes),
                i.RootfsBytes is { } r ? Mib(r) : "-", i.Config.ExposedPorts is { Count: > 0 } ports ? string.Join(",", ports) : "-",
                i.PulledAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
            ]));
        return 0;
    }

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F1}M");

    private static Command Pull(CommandContext ctx)
    {
        var cmd = new Command("pull", "Pull an image into the cache (only the blobs it lacks); per-layer progress on a terminal");
        var image = RefArg();
        cmd.Arguments.Add(image);
        var flags = new PullFlags();
        flags.AddTo(cmd);
        cmd.SetAction((p, ct) => ctx.RunAsync(async () =>
        {
            var spec = p.GetValue(image)!;
            Vmsan.Images.Sources.ImageSources.CanonicalName(spec);
            var options = flags.Read(p);
            var info = await PullProgressDisplay.RunAsync(ctx.Console, progress => ctx.Client.PullImageAsync(spec, options, progress, ct)).ConfigureAwait(false);
            if (ctx.Console.Json)
                ctx.Console.WriteJson(info, CliJsonContext.Default.ImageInfo);
            else
            {
                ctx.Console.Err.WriteLine($"pulled {info.Name} ({info.Layers} layers, {Mib(info.SizeBytes)})");
                ctx.Console.Out.WriteLine(info.ManifestDigest);
            }
            return 0;
        }));
        return cmd;
    }

    private static Command Remove(CommandContext ctx)
    {
        var cmd = new Command("rm", "Forget cached images by name (their data goes at the next `images prune`)");
        cmd.Aliases.Add("remove");
        var images = new Argument<string[]>("images") { Description = "Image names", Arity = ArgumentArity.OneOrMore };
        cmd.Arguments.Add(images);
        cmd.SetAction((p, ct) => ctx.RunAsync(() =>
        {
            var all = p.GetValue(images)!;
            // Every name checked first: a typo in the second one removes nothing.
            foreach (var spec in all)
                if (ctx.Client.FindImage(spec) is null)
                    throw ImageErrors.NotFound($"image {Vmsan.Images.Sources.ImageSources.CanonicalName(spec)} in the cache", "`vmsan images` lists the cached images");
            var removed = all.Select(ctx.Client.RemoveImage).ToList();
            if (ctx.Console.Json)
                ctx.Console.WriteJson(new RemovedResult(removed), CliJsonContext.Default.RemovedResult);
            else
                foreach (var r in removed)
                    ctx.Console.Out.WriteLine(r);
            return Task.FromResult(0);
        }));
        return cmd;
    }

    private static Command Prune(CommandContext ctx)
    {
        var cmd = new Command("prune", "Delete cached blobs and ext4 roots no image name refers to (roots of existing VMs and snapshots are kept)");
        cmd.SetAction((p, ct) => ctx.RunAsync(() =>
        {
            var r = ctx.Client.PruneImages();
            if (ctx.Console.Json)
                ctx.Console.WriteJson(r, CliJsonContext.Default.PruneResult);
            else
                ctx.Console.Out.WriteLine($"removed {r.Blobs} blobs and {r.Rootfs} root images, {Mib(r.Bytes)}");
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
