using System.Buffers.Binary;

namespace Vmsan.Agent.Tests;

/// <summary>
/// ./test.sh points VMSAN_AGENT_PATH at the NativeAOT binary that install.sh puts into the guest, so
/// these tests exercise what ships, not the JIT build. This checks that the binary really is that one.
/// </summary>
public sealed class ShippedBinaryTests
{
    [Fact]
    public void The_agent_under_test_is_the_fully_static_binary_that_ships()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("VMSAN_AGENT_PATH")))
            Assert.Skip("VMSAN_AGENT_PATH is not set: running the JIT build (./test.sh runs the shipped NativeAOT binary)");
        var bytes = File.ReadAllBytes(AgentProcess.AgentPath);
        Assert.True(bytes.Length > 64 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F', "not an ELF file");
        Assert.Equal(2, bytes[4]); // ELFCLASS64
        // No PT_INTERP program header: the kernel runs it with no dynamic loader, in any rootfs.
        var phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0x20));
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(0x36));
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(0x38));
        Assert.True(phnum > 0);
        for (var i = 0; i < phnum; i++)
        {
            var type = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)(phoff + (i * phentsize))));
            Assert.NotEqual(3u, type); // PT_INTERP
            Assert.NotEqual(2u, type); // PT_DYNAMIC
        }
    }
}
