namespace Vmsan;

internal sealed partial class VmLifecycle
{
    // Network namespaces are machine-wide while VM state is per VMSAN_HOME. Each home marks the
    // namespaces it creates so `doctor` in one home never tears down another home's live VMs.
    private const string OwnersDir = "/run/vmsan/owners";

    public void ClaimNetwork(string id)
    {
        Directory.CreateDirectory(OwnersDir);
        File.WriteAllText(Path.Combine(OwnersDir, id), _options.Paths.Home);
    }

    internal static void ReleaseNetwork(string id) => File.Delete(Path.Combine(OwnersDir, id));

    /// <summary>True when a leftover network of <paramref name="id"/> is this home's to clean up.</summary>
    internal bool OwnsNetwork(string id)
    {
        if (Directory.Exists(_options.Paths.VmDir(id)))
            return true;
        try
        {
            return File.ReadAllText(Path.Combine(OwnersDir, id)).Trim() == _options.Paths.Home;
        }
        catch (IOException)
        {
            return true; // unclaimed: left by a vmsan that predates the marker or lost /run
        }
    }
}
