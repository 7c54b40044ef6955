using System.Text;

namespace Vmsan.Files;

/// <summary>
/// The one place where tar entry names become paths. A name is accepted only when it stays under the
/// extraction root by construction: relative, no <c>..</c> component, no NUL; empty and <c>.</c> components
/// are dropped, so <c>./a//b/</c> is <c>a/b</c>. What lies on disk (symlinks) is checked by the extractor.
/// </summary>
public static class TarPaths
{
    /// <summary>Linux NAME_MAX, in bytes.</summary>
    public const int MaxComponentBytes = 255;

    /// <summary>Linux PATH_MAX less room for the root, in bytes.</summary>
    public const int MaxRelativeBytes = 3800;

    /// <summary>Normalizes an entry name to a relative path (<c>""</c> means the root itself), or says why it is refused.</summary>
    public static bool TryNormalize(string? name, out string relative, out string reason)
    {
        relative = "";
        reason = "";
        if (string.IsNullOrEmpty(name))
        {
            reason = "empty entry name";
            return false;
        }

        if (name.Contains('\0', StringComparison.Ordinal))
        {
            reason = "entry name contains NUL";
            return false;
        }

        if (name[0] == '/')
        {
            reason = $"absolute entry name '{Printable(name)}'";
            return false;
        }

        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                reason = $"entry name '{Printable(name)}' has a '..' component";
                return false;
            }

            if (Encoding.UTF8.GetByteCount(part) > MaxComponentBytes)
            {
                reason = $"entry name '{Printable(name)}' has a component longer than {MaxComponentBytes} bytes";
                return false;
            }

            parts.Add(part);
        }

        relative = string.Join('/', parts);
        if (Encoding.UTF8.GetByteCount(relative) > MaxRelativeBytes)
        {
            reason = $"entry name longer than {MaxRelativeBytes} bytes";
            relative = "";
            return false;
        }

        return true;
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="root"/> or below it (both absolute and normalized).</summary>
    public static bool IsWithin(string root, string path)
    {
        if (root == "/")
        {
            return path.StartsWith('/');
        }

        return string.Equals(path, root, StringComparison.Ordinal)
            || (path.StartsWith(root, StringComparison.Ordinal) && path.Length > root.Length && path[root.Length] == '/');
    }

    /// <summary>A name made safe for error messages (control characters escaped, length bounded).</summary>
    public static string Printable(string name)
    {
        var sb = new StringBuilder(Math.Min(name.Length, 200));
        foreach (var c in name)
        {
            if (sb.Length >= 200)
            {
                sb.Append('…');
                break;
            }

            if (char.IsControl(c))
            {
                sb.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }
}
