using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Interop;

internal static partial class Libc
{
    internal const int CLONE_NEWNET = 0x40000000;

    /// <summary>Moves the calling thread (only) into the namespace <paramref name="fd"/> refers to.</summary>
    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    internal static partial int Setns(SafeFileHandle fd, int nstype);
}
