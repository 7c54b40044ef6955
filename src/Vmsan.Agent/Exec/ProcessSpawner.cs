using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Vmsan.Agent.Exec;

/// <summary>
/// posix_spawn without fork: the child gets its own session (so its process group can be killed as one),
/// an empty signal mask and default dispositions for every signal (.NET ignores SIGPIPE, and ignored
/// dispositions survive exec), stdin from /dev/null and stdout/stderr on the given pipe ends.
/// </summary>
internal static unsafe class ProcessSpawner
{
    // glibc: posix_spawnattr_t is 336 bytes, posix_spawn_file_actions_t 80, sigset_t 128; leave headroom.
    private const int OpaqueSize = 1024;

    /// <summary>Returns the pid, or a negative errno when the process could not be started.</summary>
    /// <param name="tty">When set, a PTY slave path opened on fd 0 (and dup2'ed to 1 and 2) instead of the handles:
    /// opened after setsid without O_NOCTTY, it becomes the child's controlling terminal.</param>
    public static int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp, string cwd,
        SafeFileHandle? stdin, SafeFileHandle? stdout, SafeFileHandle? stderr, string? tty = null)
    {
        var attr = NativeMemory.AllocZeroed(OpaqueSize);
        var actions = NativeMemory.AllocZeroed(OpaqueSize);
        var sigset = NativeMemory.AllocZeroed(OpaqueSize);
        var argvBlock = ToNative(argv);
        var envBlock = ToNative(envp);
        var pathBytes = ToNative(path);
        var refs = new List<SafeHandle>(3);
        try
        {
            Check(Libc.PosixSpawnAttrInit(attr), "posix_spawnattr_init");
            Check(Libc.PosixSpawnAttrSetFlags(attr,
                Libc.POSIX_SPAWN_SETSID | Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF), "posix_spawnattr_setflags");
            Libc.SigEmptySet(sigset);
            Check(Libc.PosixSpawnAttrSetSigMask(attr, sigset), "posix_spawnattr_setsigmask");
            // Every signal 1..64 back to SIG_DFL, glibc's internal 32 and 33 included: sigfillset leaves those out, and
            // glibc's spawn child then sets them to SIG_IGN (the agent has handlers for them), which survives exec.
            // setsigdefault copies the set as it is, so the bits are set by hand.
            new Span<byte>(sigset, 8).Fill(0xFF);
            Check(Libc.PosixSpawnAttrSetSigDefault(attr, sigset), "posix_spawnattr_setsigdefault");

            Check(Libc.PosixSpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
            if (tty is not null)
            {
                // glibc applies SETSID before the file actions, so this open acquires the controlling terminal.
                Check(Libc.PosixSpawnFileActionsAddOpen(actions, 0, tty, Libc.O_RDWR, 0), "posix_spawn_file_actions_addopen");
                Check(Libc.PosixSpawnFileActionsAddDup2(actions, 0, 1), "posix_spawn_file_actions_adddup2");
                Check(Libc.PosixSpawnFileActionsAddDup2(actions, 0, 2), "posix_spawn_file_actions_adddup2");
            }
            else if (stdin is null)
            {
                Check(Libc.PosixSpawnFileActionsAddOpen(actions, 0, "/dev/null", Libc.O_RDONLY, 0), "posix_spawn_file_actions_addopen");
            }
            else
            {
                Check(Libc.PosixSpawnFileActionsAddDup2(actions, Fd(stdin, refs), 0), "posix_spawn_file_actions_adddup2");
            }

            if (tty is null)
            {
                Check(Libc.PosixSpawnFileActionsAddDup2(actions, Fd(stdout!, refs), 1), "posix_spawn_file_actions_adddup2");
                Check(Libc.PosixSpawnFileActionsAddDup2(actions, Fd(stderr!, refs), 2), "posix_spawn_file_actions_adddup2");
            }

            Check(Libc.PosixSpawnFileActionsAddChdir(actions, cwd), "posix_spawn_file_actions_addchdir_np");

            int pid;
            var error = Libc.PosixSpawn(&pid, pathBytes, actions, attr, (byte**)argvBlock, (byte**)envBlock);
            return error == 0 ? pid : -error;
        }
        finally
        {
            foreach (var handle in refs)
            {
                handle.DangerousRelease();
            }

            Libc.PosixSpawnFileActionsDestroy(actions);
            Libc.PosixSpawnAttrDestroy(attr);
            NativeMemory.Free(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(sigset);
            FreeNative(argvBlock, argv.Count);
            FreeNative(envBlock, envp.Count);
            NativeMemory.Free(pathBytes);
        }
    }

    private static int Fd(SafeFileHandle handle, List<SafeHandle> refs)
    {
        var added = false;
        handle.DangerousAddRef(ref added);
        refs.Add(handle);
        return (int)handle.DangerousGetHandle();
    }

    private static void Check(int error, string call)
    {
        if (error != 0)
        {
            throw new ErrnoException(call, error, null);
        }
    }

    private static byte* ToNative(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        var p = (byte*)NativeMemory.Alloc((nuint)count + 1);
        Encoding.UTF8.GetBytes(value, new Span<byte>(p, count));
        p[count] = 0;
        return p;
    }

    private static nint* ToNative(IReadOnlyList<string> values)
    {
        var block = (nint*)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(nint));
        for (var i = 0; i < values.Count; i++)
        {
            block[i] = (nint)ToNative(values[i]);
        }

        return block;
    }

    private static void FreeNative(nint* block, int count)
    {
        for (var i = 0; i < count; i++)
        {
            NativeMemory.Free((void*)block[i]);
        }

        NativeMemory.Free(block);
    }
}
