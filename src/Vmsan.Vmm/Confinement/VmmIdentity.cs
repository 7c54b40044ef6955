using System.Globalization;

namespace Vmsan.Vmm.Confinement;

/// <summary>
/// Who a VMM runs as. Every VM gets a uid of its own (<see cref="UidBase"/> + its network slot),
/// so an escaped VMM cannot signal, ptrace or read another VM's VMM or files; all share the
/// primary group of the <c>vmsan-vmm</c> account that <c>install.sh</c> creates (a system user in
/// the <c>kvm</c> group, with no login and no home). The per-VM uids need no passwd entries.
/// </summary>
public static class VmmIdentity
{
    public const string Account = "vmsan-vmm";

    /// <summary>
    /// Start of the per-VM uid range (16,384 uids, one per network slot). Far above login users,
    /// systemd's dynamic users (61184–65519) and the usual subordinate-uid ranges (from 100000 in
    /// steps of 65536); <c>VMSAN_VMM_UID_BASE</c> moves it.
    /// </summary>
    public static int UidBase =>
        int.TryParse(Vmsan.Core.VmsanEnvironment.Current.VmmUidBase, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b > 0
            ? b
            : 1_900_000_000;

    public static int UidFor(int slot) => UidBase + slot;

    /// <summary>The <c>vmsan-vmm</c> account's primary gid from /etc/passwd, or null when it does not exist.</summary>
    public static int? AccountGid(string passwd = "/etc/passwd")
    {
        try
        {
            foreach (var line in File.ReadLines(passwd))
            {
                var f = line.Split(':');
                if (f.Length >= 4 && f[0] == Account && int.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
                    return gid;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
