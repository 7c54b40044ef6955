using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vmsan.Core;
using Vmsan.Core.Errors;

namespace Vmsan.Runtimes;

/// <summary>An npm package whose files go into the image: <see cref="Paths"/> inside the package, copied under <see cref="To"/>.</summary>
internal sealed record NpmFiles
{
    public required string Spec { get; init; }
    public required string To { get; init; }
    public IReadOnlyList<string>? Paths { get; init; }
}

/// <summary>A runtime recipe (<c>recipes/NAME.json</c>): data the build script turns into an image.</summary>
internal sealed record RuntimeRecipe
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    // Nullable: the source-generated reader leaves absent init properties null.
    public IReadOnlyList<string>? Debs { get; init; }
    public IReadOnlyList<NpmFiles>? Npm { get; init; }
    public IReadOnlyDictionary<string, string>? Links { get; init; }
    public string? VersionCommand { get; init; }
}

/// <summary>What <c>build-rootfs.sh</c> writes beside the image.</summary>
internal sealed record RuntimeManifestFile
{
    public string? Name { get; init; }
    /// <summary>The version file (<c>rootfs-VERSION.ext4</c>) this manifest describes.</summary>
    public string? Image { get; init; }
    public string? Version { get; init; }
    public long SizeBytes { get; init; }
    public long ContentBytes { get; init; }
    public DateTimeOffset? BuiltAt { get; init; }
}

/// <summary>A runtime as <c>vmsan runtimes --json</c> prints it.</summary>
public sealed record RuntimeInfo
{
    /// <summary>The runtime's name (<c>--runtime NAME</c>).</summary>
    public required string Name { get; init; }
    /// <summary>What the recipe says it holds.</summary>
    public string? Description { get; init; }
    /// <summary>The recipe's version command's output at build time (e.g. <c>Python 3.13.5</c>).</summary>
    public string? Version { get; init; }
    /// <summary>Whether an image exists (a VM can use it).</summary>
    public required bool Built { get; init; }
    /// <summary>Built from this recipe, agent and base: a build would do nothing.</summary>
    public required bool UpToDate { get; init; }
    /// <summary>The image file's size (sparse).</summary>
    public long? SizeBytes { get; init; }
    /// <summary>The bytes of files in the image.</summary>
    public long? ContentBytes { get; init; }
    /// <summary>When the image was built.</summary>
    public DateTimeOffset? BuiltAt { get; init; }
    /// <summary>sha256 of the recipe file.</summary>
    public required string RecipeDigest { get; init; }
    /// <summary>The image version a create uses now (<c>runtimes/NAME/rootfs-VERSION.ext4</c>, what <c>rootfs.ext4</c> points at).</summary>
    public string? Image { get; init; }
    /// <summary>Image versions kept besides <see cref="Image"/> (VMs or snapshots made earlier may use them; <c>vmsan runtimes prune</c> removes the unused).</summary>
    public int OlderVersions { get; init; }
}

/// <summary>What <c>vmsan runtimes prune</c> removed and what it kept because something uses it.</summary>
/// <param name="Removed">Image versions deleted.</param>
/// <param name="Bytes">Bytes those files held on disk.</param>
/// <param name="InUse">Old versions kept: a VM or snapshot names them, or a process has them open.</param>
/// <param name="Busy">Runtimes skipped because a build of theirs is running.</param>
public sealed record RuntimePruneResult(IReadOnlyList<string> Removed, long Bytes, IReadOnlyList<string> InUse, IReadOnlyList<string> Busy);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(RuntimeRecipe))]
[JsonSerializable(typeof(RuntimeManifestFile))]
[JsonSerializable(typeof(RuntimeInfo))]
[JsonSerializable(typeof(List<RuntimeInfo>))]
[JsonSerializable(typeof(RuntimePruneResult))]
internal sealed partial class RuntimeJsonContext : JsonSerializerContext;

/// <summary>
/// The runtimes an installation knows: one recipe per file under <c>$VMSAN_ASSETS/recipes</c>, built by
/// <c>$VMSAN_ASSETS/lib/build-rootfs.sh</c> into a new version <c>runtimes/NAME/rootfs-VERSION.ext4</c>, published by
/// renaming the symlink <c>runtimes/NAME/rootfs.ext4</c> to it. A create resolves the link and layers on the version
/// file itself, so a rebuild never changes the base under an existing VM. A build is skipped when the recipe, the
/// agent and the base recipe are what the image was built from (<c>.inputs</c>); a failed or killed build leaves the
/// previous version published.
/// </summary>
internal sealed class RuntimeCatalog(VmsanPaths paths)
{
    private string RecipesDir => Path.Combine(paths.Assets, "recipes");

    private string Script => Path.Combine(paths.Assets, "lib", "build-rootfs.sh");

    /// <summary>build-rootfs.sh's exit status when another build of the runtime holds its lock (EX_TEMPFAIL).</summary>
    private const int BuildBusyExit = 75;

    /// <summary>The lock a build holds from start to end (the script's <c>flock</c>); a prune takes it too, so it never races a publish.</summary>
    public string BuildLockPath(string name) => Path.Combine(paths.RuntimeDir(name), ".build.lock");

    /// <summary>
    /// The image a create of <paramref name="name"/> uses now: the version file <c>rootfs.ext4</c> points at (full
    /// path), the plain <c>rootfs.ext4</c> of an installation from before versioned builds, or null when not built.
    /// </summary>
    public string? CurrentImage(string name)
    {
        var pointer = new FileInfo(paths.RuntimeRootfs(name));
        if (pointer.LinkTarget is null)
            return pointer.Exists ? pointer.FullName : null;
        var target = pointer.ResolveLinkTarget(returnFinalTarget: true);
        return target is not null && File.Exists(target.FullName) ? target.FullName : null;
    }

    /// <summary>Every image version of <paramref name="name"/> on disk (full paths), oldest name first.</summary>
    public IReadOnlyList<string> Versions(string name)
    {
        var dir = paths.RuntimeDir(name);
        return Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, "rootfs-*.ext4").Where(f => new FileInfo(f).LinkTarget is null).Order(StringComparer.Ordinal).ToList()
            : [];
    }

    /// <summary>
    /// The versions a prune may delete: every one but <paramref name="current"/>, those <paramref name="inUse"/> names
    /// (full paths) and those <paramref name="isOpen"/> says a process holds.
    /// </summary>
    internal static (List<string> Unused, List<string> Used) Partition(IEnumerable<string> versions, string? current, IReadOnlySet<string> inUse, Func<string, bool> isOpen)
    {
        var unused = new List<string>();
        var used = new List<string>();
        foreach (var v in versions)
        {
            if (v == current)
                continue;
            (inUse.Contains(v) || isOpen(v) ? used : unused).Add(v);
        }
        return (unused, used);
    }

    public IReadOnlyList<string> Names() =>
        Directory.Exists(RecipesDir)
            ? Directory.EnumerateFiles(RecipesDir, "*.json").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToList()
            : [];

    public (RuntimeRecipe Recipe, string Digest) Load(string name)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            throw VmsanException.Invalid($"Invalid runtime name '{name}'.", "`vmsan runtimes` lists the runtimes.");
        var file = Path.Combine(RecipesDir, name + ".json");
        if (!File.Exists(file))
            throw new VmsanException(ErrorCode.RuntimeNotFound, $"There is no recipe for runtime '{name}' ({file}).",
                $"Known: {string.Join(", ", Names().DefaultIfEmpty("none (run ./install.sh)"))}.");
        var bytes = File.ReadAllBytes(file);
        RuntimeRecipe? recipe;
        try
        {
            recipe = JsonSerializer.Deserialize(bytes, RuntimeJsonContext.Default.RuntimeRecipe);
        }
        catch (JsonException ex)
        {
            throw new VmsanException(ErrorCode.InvalidArgument, $"The recipe {file} is not valid: {ex.Message}", "Reinstall vmsan (./install.sh).", ex);
        }
        if (recipe is null || recipe.Name != name)
            throw new VmsanException(ErrorCode.InvalidArgument, $"The recipe {file} does not describe '{name}'.", "Reinstall vmsan (./install.sh).");
        return (recipe, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>What an image is built from: the recipe, the agent and (for every runtime but base) the base recipe.</summary>
    public string Inputs(string name, string recipeDigest)
    {
        var agent = Path.Combine(paths.Assets, "bin", "vmsan-agent");
        var sb = new StringBuilder(recipeDigest);
        sb.Append(' ').Append(File.Exists(agent) ? Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(agent))) : "no-agent");
        if (name != "base" && File.Exists(Path.Combine(RecipesDir, "base.json")))
            sb.Append(' ').Append(Load("base").Digest);
        if (File.Exists(Script))
            sb.Append(' ').Append(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Script))));
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public RuntimeInfo Info(string name)
    {
        var (recipe, digest) = Load(name);
        var dir = paths.RuntimeDir(name);
        var image = CurrentImage(name);
        var built = image is not null;
        RuntimeManifestFile? m = null;
        try
        {
            // The manifest of the current version (rootfs-VERSION.json beside it); manifest.json of an older layout.
            var mf = image is not null && Path.GetFileName(image).StartsWith("rootfs-", StringComparison.Ordinal)
                ? Path.ChangeExtension(image, ".json")
                : Path.Combine(dir, "manifest.json");
            if (File.Exists(mf))
                m = JsonSerializer.Deserialize(File.ReadAllBytes(mf), RuntimeJsonContext.Default.RuntimeManifestFile);
        }
        catch (JsonException)
        {
        }
        var inputs = Path.Combine(dir, ".inputs");
        return new RuntimeInfo
        {
            Name = name,
            Description = recipe.Description,
            Version = m?.Version,
            Built = built,
            UpToDate = built && File.Exists(inputs) && File.ReadAllText(inputs).Trim() == Inputs(name, digest),
            SizeBytes = built ? m?.SizeBytes ?? new FileInfo(image!).Length : null,
            ContentBytes = built ? m?.ContentBytes : null,
            BuiltAt = built ? m?.BuiltAt : null,
            RecipeDigest = digest,
            Image = image,
            OlderVersions = Versions(name).Count(v => v != image),
        };
    }

    /// <summary>How long an interrupted build's script gets to remove its temp tree before its group is SIGKILLed.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Stops an interrupted build and returns only when none of its processes is left: SIGTERM to the whole group
    /// (the script's shell waits for its foreground child, so the child must get it too), after which the script's
    /// trap unmounts and removes its temp tree and temp image; SIGKILL to what is left after <see cref="StopGrace"/>
    /// (the next build then removes the leftovers). Waiting matters to a CLI that exits next: once vmsan is gone,
    /// the script's watchdog SIGKILLs the group, cleanup included.
    /// </summary>
    private static async Task StopBuildAsync(Process p, string name)
    {
        var group = p.Id;
        Core.Interop.LibcPublic.SignalGroup(group, Core.Interop.LibcPublic.SIGTERM);
        var deadline = DateTime.UtcNow + StopGrace;
        while (Core.Interop.LibcPublic.GroupAlive(group) || !p.HasExited)
        {
            if (DateTime.UtcNow > deadline)
            {
                Core.Interop.LibcPublic.SignalGroup(group, Core.Interop.LibcPublic.SIGKILL);
                if (DateTime.UtcNow > deadline + TimeSpan.FromSeconds(10))
                    throw new VmsanException(ErrorCode.Internal, $"The interrupted build of runtime '{name}' (process group {group}) survived SIGKILL for 10 s.",
                        "A process stuck in the kernel (D state) cannot be killed: see `ps -o pid,stat,cmd -g " + group + "`.");
            }
            await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Builds (or finds up to date) runtime <paramref name="name"/>; the script's log lines go to <paramref name="progress"/>.</summary>
    public async Task<RuntimeInfo> BuildAsync(string name, Action<string>? progress, CancellationToken ct)
    {
        var (recipe, digest) = Load(name);
        var inputs = Inputs(name, digest);
        if (!File.Exists(Script))
            throw new VmsanException(ErrorCode.AssetsMissing, $"The runtime build script is not installed ({Script}).", "Run ./install.sh.");
        var dir = paths.RuntimeDir(name);
        Directory.CreateDirectory(dir);
        // setsid: the build (debootstrap, dpkg, npm) gets a process group of its own, which the script's
        // watchdog kills whole if this process dies, and which cancellation signals whole. What a killed
        // build left (temp tree, temp image) is removed by the next build, under the script's lock.
        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("--wait");
        psi.ArgumentList.Add("/bin/bash");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(name);
        psi.ArgumentList.Add(dir);
        psi.Environment["VMSAN_RECIPE_DEBS"] = string.Join(' ', recipe.Debs ?? []);
        psi.Environment["VMSAN_RECIPE_NPM"] = string.Join('\n', (recipe.Npm ?? []).Select(n => $"{n.Spec}|{n.To}|{string.Join(',', n.Paths ?? ["."])}"));
        psi.Environment["VMSAN_RECIPE_LINKS"] = string.Join('\n', (recipe.Links ?? new Dictionary<string, string>()).Select(kv => $"{kv.Key}|{kv.Value}"));
        psi.Environment["VMSAN_RECIPE_VERSION"] = recipe.VersionCommand ?? "";
        psi.Environment["VMSAN_BUILD_INPUTS"] = inputs;
        psi.Environment["VMSAN_BUILD_PARENT"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var p = Process.Start(psi) ?? throw new VmsanException(ErrorCode.Internal, "Cannot start the runtime build.");
        var tail = new Queue<string>();
        var err = Task.Run(async () =>
        {
            while (await p.StandardError.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                lock (tail)
                {
                    tail.Enqueue(line);
                    if (tail.Count > 20)
                        tail.Dequeue();
                }
                progress?.Invoke(line);
            }
        }, ct);
        var outTask = p.StandardOutput.ReadToEndAsync(ct);
        try
        {
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await StopBuildAsync(p, name).ConfigureAwait(false);
            throw;
        }
        await err.ConfigureAwait(false);
        await outTask.ConfigureAwait(false);
        if (p.ExitCode == BuildBusyExit)
            throw new VmsanException(ErrorCode.RuntimeBuildBusy, $"Another build of runtime '{name}' is running.",
                "Wait for it to finish (it holds runtimes/" + name + "/.build.lock), then run the build again; it is skipped if that build succeeded.");
        if (p.ExitCode != 0)
            throw new VmsanException(ErrorCode.RuntimeBuildFailed, $"Building runtime '{name}' failed (exit {p.ExitCode}): {string.Join(" | ", tail.TakeLast(5))}",
                "The previous image, if any, is unchanged; check the network (deb.debian.org, the npm registry) and retry.");
        // Exit 0 must mean a published image: never record inputs for an image that is not there.
        if (CurrentImage(name) is null || !File.Exists(Path.Combine(dir, "manifest.json")))
            throw new VmsanException(ErrorCode.RuntimeBuildFailed, $"Building runtime '{name}' ended without an image in {dir}.",
                "Reinstall vmsan (./install.sh): its build script is not the one this vmsan expects.");
        File.WriteAllText(Path.Combine(dir, ".inputs.tmp"), inputs + "\n");
        File.Move(Path.Combine(dir, ".inputs.tmp"), Path.Combine(dir, ".inputs"), overwrite: true);
        return Info(name);
    }
}
