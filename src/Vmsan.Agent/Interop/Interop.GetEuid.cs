using System.Runtime.InteropServices;

namespace Vmsan.Agent;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "geteuid")]
    internal static partial uint GetEuid();
}
