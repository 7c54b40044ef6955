using Vmsan.Agent.Protocol.Files;
using Vmsan.Agent.Users;
using Vmsan.Files;

namespace Vmsan.Agent.Files;

/// <summary>
/// File system reads of a download with the request's user's credentials (<see cref="ThreadCredentials"/>: switched
/// on the calling thread for the one synchronous call, then back), so the kernel's own permission checks apply.
/// </summary>
internal sealed class UserFileAccess(UserAccount user) : IFileAccess
{
    public T Run<T>(Func<T> action)
    {
        T result = default!;
        var rc = ThreadCredentials.Run(user, () =>
        {
            result = action();
            return 0;
        });
        if (rc < 0)
        {
            throw new UnauthorizedAccessException($"cannot act as {user.Name}: {Libc.StrError(-rc)}");
        }

        return result;
    }
}
