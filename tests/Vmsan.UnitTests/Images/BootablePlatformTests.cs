namespace Vmsan.UnitTests.Images;

public class BootablePlatformTests
{
    [Theory]
    [InlineData("linux/amd64", true)]
    [InlineData("linux/amd64/v3", true)]
    [InlineData("linux/arm64", false)]
    [InlineData("linux/arm/v7", false)]
    [InlineData("windows/amd64", false)]
    [InlineData("linux/s390x", false)]
    public void Only_images_of_the_hosts_architecture_are_bootable(string platform, bool bootable)
    {
        var p = Vmsan.Images.Model.Manifests.ParsePlatform(platform);
        var ex = Record.Exception(() => BootablePlatform.Check(p));
        if (bootable)
            Assert.Null(ex);
        else
        {
            var v = Assert.IsType<Vmsan.Core.Errors.VmsanException>(ex);
            Assert.Equal(Vmsan.Core.Errors.ErrorCode.InvalidArgument, v.Code);
            Assert.Contains(platform, v.Message, StringComparison.Ordinal);
            Assert.Contains("linux/amd64", v.Fix!, StringComparison.Ordinal);
        }
    }
}
