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

    /// <summary>Every path under the directory (relative, sorted), e.g. to assert no temporary file is left.</summary>
    public List<string> List() =>
        Directory.EnumerateFileSystemEntries(Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(p => System.IO.Path.GetRelativePath(Path, p)).Order(StringComparer.Ordinal).ToList();
}
