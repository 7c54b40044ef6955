namespace Vmsan.Core.Errors;

public static class ErrorCodeNames
{
    /// <summary>The wire name, e.g. <c>VM_NOT_FOUND</c>.</summary>
    public static string ToWire(this ErrorCode code)
    {
        var name = code.ToString();
        var sb = new System.Text.StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (i > 0 && char.IsUpper(c))
                sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }
}
