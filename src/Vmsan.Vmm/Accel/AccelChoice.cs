namespace Vmsan.Vmm;

public enum AccelKind
{
    Kvm,
    Tcg,
}

/// <summary>The accelerator chosen for a VM, and why (shown by <c>doctor</c> and <c>--verbose</c>).</summary>
public sealed record AccelChoice(AccelKind Kind, string Reason, long? TscKhz = null)
{
    public string Name => Kind == AccelKind.Kvm ? "kvm" : "tcg";
}
