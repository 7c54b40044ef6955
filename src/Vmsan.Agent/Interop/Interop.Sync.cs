using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "sync", SetLastError = true)]
    internal static partial void Sync();
}
