namespace Vmsan.Agent.Tests.Files;

/// <summary>A temporary directory removed with everything in it.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("vmsan-files-").FullName;
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Join(Path, relative);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Every path under the directory (relative, sorted; symlinks listed, never followed).</summary>
    public List<string> List()
    {
        var result = new List<string>();
        var pending = new Stack<string>();
        pending.Push(Path);
        while (pending.Count > 0)
        {
            foreach (var entry in new DirectoryInfo(pending.Pop()).EnumerateFileSystemInfos())
            {
                result.Add(System.IO.Path.GetRelativePath(Path, entry.FullName));
                if (entry.LinkTarget is null && entry is DirectoryInfo)
                {
                    pending.Push(entry.FullName);
                }
            }
        }

        result.Sort(StringComparer.Ordinal);
        return result;
    }
}
