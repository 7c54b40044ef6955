using System.Text;
using Vmsan.Agent.Protocol;
using Vmsan.Core.Errors;

namespace Vmsan.Boot;

/// <summary>
/// The per-VM settings the guest's /init reads from <c>/vmsan/config</c> (docs/internals.md).
/// Values are checked against a narrow alphabet because /init parses them with a shell.
/// </summary>
internal sealed record GuestConfig(string VmId, string Token, string GuestCidr, string Gateway, string? Dns, int Mtu = 1500)
{
    public string Render()
    {
        var sb = new StringBuilder();
        Add(sb, GuestConfigKeys.Id, VmId);
        Add(sb, GuestConfigKeys.Token, Token);
        Add(sb, GuestConfigKeys.Ip, GuestCidr);
        Add(sb, GuestConfigKeys.Gateway, Gateway);
        Add(sb, GuestConfigKeys.Dns, Dns ?? "");
        Add(sb, GuestConfigKeys.Mtu, Mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    private static void Add(StringBuilder sb, string key, string value)
    {
        if (!IsSafe(value))
            throw new VmsanException(ErrorCode.Internal, $"Guest config value for {key} has characters /init cannot take: '{value}'.");
        sb.Append(key).Append('=').Append(value).Append('\n');
    }

    public static bool IsSafe(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '/' or '+' or '=' or '-');

    /// <summary>Writes base initrd + zero padding to 4 bytes + the config archive to <paramref name="path"/>.</summary>
    public void WriteInitrd(string baseInitrd, string path)
    {
        var archive = new NewcArchive();
        archive.AddDirectory("vmsan", 0x1C0 /* 0700 */);
        archive.AddFile("vmsan/config", Encoding.ASCII.GetBytes(Render()));
        var tail = archive.Finish();
        var tmp = path + ".tmp";
        using (var output = new FileStream(tmp, new FileStreamOptions
               {
                   Mode = FileMode.Create,
                   Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            using (var input = File.OpenRead(baseInitrd))
                input.CopyTo(output);
            while (output.Length % 4 != 0)
                output.WriteByte(0);
            output.Write(tail);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
