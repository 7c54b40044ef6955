namespace Vmsan.Files;

/// <summary>
/// A read-through stream that watches tar header blocks go by and refuses metadata entries (PAX
/// extended headers, GNU long names and links) bigger than <see cref="MaxMetadataBytes"/>.
/// System.Formats.Tar reads those entries whole into memory, so without this a hostile archive
/// (for the host: one sent by a guest during a download) could make the reader allocate as much
/// as the archive is long. Data of ordinary entries is never inspected or held. To find the next header it needs each
/// entry's size: the ustar field (octal, or GNU base-256), overridden by the <c>size</c> record of a PAX extended header
/// (what writers use for 8 GiB and more, with 0 in the ustar field); PAX headers are kept (≤ 1 MiB) to read it.
/// </summary>
internal sealed class TarMetadataGuardStream(Stream inner) : Stream
{
    public const int MaxMetadataBytes = 1024 * 1024;
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _skip;
    /// <summary>The PAX extended header being collected (null when none), and how many of its bytes are still to come.</summary>
    private byte[]? _pax;
    private int _paxFill;
    /// <summary>The size the last PAX extended header gave the next entry.</summary>
    private long? _paxSize;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Inspect(buffer.AsSpan(offset, inner.Read(buffer, offset, count)));

    public override int Read(Span<byte> buffer) => Inspect(buffer[..inner.Read(buffer)]);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Inspect(buffer.Span[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Inspect(ReadOnlySpan<byte> data)
    {
        var n = data.Length;
        while (!data.IsEmpty)
        {
            if (_pax is not null)
            {
                var take = Math.Min(_pax.Length - _paxFill, data.Length);
                data[..take].CopyTo(_pax.AsSpan(_paxFill));
                _paxFill += take;
                data = data[take..];
                if (_paxFill == _pax.Length)
                {
                    _paxSize = PaxSize(_pax) ?? _paxSize;
                    _pax = null;
                }

                continue;
            }

            if (_skip > 0)
            {
                var take = (int)Math.Min(_skip, data.Length);
                _skip -= take;
                data = data[take..];
                continue;
            }

            var fill = Math.Min(Block - _headerFill, data.Length);
            data[..fill].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += fill;
            data = data[fill..];
            if (_headerFill == Block)
            {
                _headerFill = 0;
                OnHeader();
            }
        }

        return n;
    }

    private void OnHeader()
    {
        if (!_header.AsSpan().ContainsAnyExcept((byte)0))
            return; // end-of-archive padding
        var size = ParseSize(_header.AsSpan(124, 12));
        var type = (char)_header[156];
        if (type is 'x' or 'g' or 'L' or 'K' && size > MaxMetadataBytes)
            throw new InvalidDataException($"tar metadata entry of type '{type}' is {size} bytes; more than {MaxMetadataBytes} is refused");
        if (type == 'x')
        {
            // Read whole (padding included) to learn the size it gives the next entry.
            _pax = new byte[(size + Block - 1) / Block * Block];
            _paxFill = 0;
            if (_pax.Length == 0)
                _pax = null;
            return;
        }

        if (type is not ('g' or 'L' or 'K') && _paxSize is { } paxSize)
        {
            size = paxSize;
            _paxSize = null;
        }

        _skip = (size + Block - 1) / Block * Block;
    }

    /// <summary>The <c>size</c> record of a PAX extended header ("LEN key=value\n" records), or null when it has none.</summary>
    private static long? PaxSize(ReadOnlySpan<byte> data)
    {
        long? result = null;
        while (!data.IsEmpty && data[0] != 0)
        {
            var space = data.IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(data[..space], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length)
                || length <= space + 1 || length > data.Length || data[length - 1] != (byte)'\n')
                throw new InvalidDataException("malformed PAX extended header");
            var record = data[(space + 1)..(length - 1)];
            if (record.StartsWith("size="u8))
            {
                if (!long.TryParse(record[5..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size))
                    throw new InvalidDataException("PAX size record is not a number");
                result = size;
            }

            data = data[length..];
        }

        return result;
    }

    /// <summary>Octal, or GNU base-256 when the first byte's high bit is set.</summary>
    private static long ParseSize(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            long v = field[0] & 0x7F;
            foreach (var b in field[1..])
            {
                if (v > long.MaxValue >> 8)
                    throw new InvalidDataException("tar size field out of range");
                v = (v << 8) | b;
            }
            return v;
        }

        long size = 0;
        foreach (var b in field)
        {
            if (b is (byte)' ' or 0)
            {
                if (size > 0)
                    break;
                continue;
            }
            if (b is < (byte)'0' or > (byte)'7')
                throw new InvalidDataException("tar size field is not octal");
            size = (size * 8) + (b - '0');
        }
        return size;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
