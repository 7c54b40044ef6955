namespace Vmsan.Files;

/// <summary>
/// Runs the file system calls of a packing (lstat, open, directory listing) on someone's behalf: the agent runs them
/// with the request's user's credentials, so a download reads only what that user may read. Each call is synchronous
/// and short (the credentials belong to the calling thread and must not outlive it).
/// </summary>
public interface IFileAccess
{
    /// <summary>Runs <paramref name="action"/> as the user and returns its result; exceptions pass through.</summary>
    T Run<T>(Func<T> action);
}
