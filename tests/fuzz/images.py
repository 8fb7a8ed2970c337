"""JPEG and PNG files written from scratch (no imaging library), valid or
damaged in their structure, for the image decoders behind resnet_prep.

The JPEG writer codes every 8x8 block as a flat colour (DC coefficient only,
every AC band an end-of-block), which keeps it small while exercising the
real marker structure: SOF0/SOF2, DQT, DHT, SOS, restart-free entropy data,
Adobe APP14 for CMYK, progressive scans.
"""
import struct
import zlib

# DC table of the JPEG standard (Annex K.3, luminance): code lengths 1..16
# and the categories they code.
DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_VALS = list(range(12))


def _huff_codes(bits, vals):
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


DC_CODES = _huff_codes(DC_BITS, DC_VALS)
# An AC table holding only symbol 0x00 (end of block / EOBRUN of 1).
AC_BITS = [1] + [0] * 15
AC_VALS = [0]


class _Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, length):
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc, self.n = 0, 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def _dc(bits, diff):
    mag = abs(diff)
    cat = mag.bit_length()
    code, length = DC_CODES[cat]
    bits.put(code, length)
    if cat:
        bits.put(diff if diff > 0 else diff + (1 << cat) - 1, cat)


def _segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _dht(cls, ident, bits, vals):
    return _segment(0xC4, bytes([(cls << 4) | ident]) + bytes(bits) + bytes(vals))


def jpeg(width, height, ncomp=3, colours=None, progressive=False, extra_scans=0,
         declared=None, cmyk_adobe=True):
    """A JPEG of width x height (padded to whole blocks) with ncomp 1, 3 or 4
    components; colours(bx, by, comp) gives each block's level 0..255.
    declared=(w, h) writes other dimensions into the SOF than the data has.
    progressive adds a DC scan and one AC scan per component, plus
    extra_scans repeated AC scans (a bogus but decodable progression)."""
    colours = colours or (lambda bx, by, c: (bx * 37 + by * 71 + c * 50) % 256)
    bw, bh = (width + 7) // 8, (height + 7) // 8
    sw, sh = declared or (width, height)
    out = bytearray(b"\xFF\xD8")
    out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    if ncomp == 4 and cmyk_adobe:
        out += _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00")  # transform 0: CMYK
    out += _segment(0xDB, b"\x00" + bytes([1] * 64))
    sof = 0xC2 if progressive else 0xC0
    comps = b"".join(bytes([c + 1, 0x11, 0]) for c in range(ncomp))
    out += _segment(sof, struct.pack(">BHHB", 8, sh & 0xFFFF, sw & 0xFFFF, ncomp) + comps)
    out += _dht(0, 0, DC_BITS, DC_VALS)
    out += _dht(1, 0, AC_BITS, AC_VALS)

    def sos(comp_ids, ss, se, ah_al):
        body = bytes([len(comp_ids)]) + b"".join(bytes([c + 1, 0x00]) for c in comp_ids)
        return _segment(0xDA, body + bytes([ss, se, ah_al]))

    def dc_data(with_ac):
        bits, pred = _Bits(), [0] * ncomp
        for by in range(bh):
            for bx in range(bw):
                for c in range(ncomp):
                    level = (colours(bx, by, c) - 128) * 8
                    _dc(bits, level - pred[c])
                    pred[c] = level
                    if with_ac:
                        bits.put(0, 1)  # end of block
        return bits.flush()

    def ac_data():
        bits = _Bits()
        for _ in range(bw * bh):
            bits.put(0, 1)  # EOBRUN of one block
        return bits.flush()

    if not progressive:
        out += sos(list(range(ncomp)), 0, 63, 0) + dc_data(True)
    else:
        out += sos(list(range(ncomp)), 0, 0, 0) + dc_data(False)
        for k in range(1 + extra_scans):
            for c in range(ncomp):
                out += sos([c], 1, 63, 0) + ac_data()
    out += b"\xFF\xD9"
    return bytes(out)


def jpeg_segments(data):
    """(offset, marker, length) of each marker segment before the first SOS."""
    segs, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segs.append((i, marker, length))
        if marker == 0xDA:
            break
        i += 2 + length
    return segs


def set_sof_size(data, width, height):
    """The same JPEG with other dimensions in its SOF header."""
    data = bytearray(data)
    for off, marker, _ in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, off + 5, height & 0xFFFF, width & 0xFFFF)
    return bytes(data)


def _chunk(kind, body, crc=None):
    c = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", c & 0xFFFFFFFF)


def png(width, height, colour_type=2, depth=8, declared=None, interlace=0, bad_crc=False,
        idat_cut=None, extra=b""):
    """A PNG; colour_type 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
    declared=(w, h) puts other dimensions into IHDR than the pixel data has."""
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 3)
    row = bytes([0]) + bytes((x * 7 + c) % 256 for x in range(width) for c in range(chans * depth // 8))
    raw = row * height
    w, h = declared or (width, height)
    ihdr = struct.pack(">IIBBBBB", w & 0xFFFFFFFF, h & 0xFFFFFFFF, depth, colour_type, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    if colour_type == 3:
        out += _chunk(b"PLTE", bytes(range(48)))
    out += extra
    idat = zlib.compress(raw)
    if idat_cut is not None:
        idat = idat[:idat_cut]
    out += _chunk(b"IDAT", idat, 0 if bad_crc else None)
    return out + _chunk(b"IEND", b"")


def bitflip(rng, data, count):
    data = bytearray(data)
    for _ in range(count):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)] if data else data


def mutated_jpeg(rng):
    """(name, bytes) of one JPEG, valid or damaged in one or two ways."""
    w, h = rng.choice([(8, 8), (16, 24), (40, 17), (64, 64), (1, 1)])
    kind = rng.choice(["valid", "grey", "cmyk", "cmyk-no-adobe", "progressive", "many-scans",
                       "huge-sof", "huge-progressive", "zero-sof", "truncated", "bitflip",
                       "segment-length", "trailing-garbage", "no-eoi"])
    if kind == "grey":
        return kind, jpeg(w, h, 1)
    if kind == "cmyk":
        return kind, jpeg(w, h, 4)
    if kind == "cmyk-no-adobe":
        return kind, jpeg(w, h, 4, cmyk_adobe=False)
    if kind == "progressive":
        return kind, jpeg(w, h, rng.choice([1, 3]), progressive=True)
    if kind == "many-scans":
        return kind, jpeg(w, h, 3, progressive=True, extra_scans=rng.choice([50, 500, 3000]))
    if kind == "huge-sof":
        dims = (rng.choice([65535, 40000, 1, 30000]), rng.choice([65535, 40000, 1, 30000]))
        return kind, jpeg(w, h, 3, declared=dims)
    if kind == "huge-progressive":  # a decompression bomb: few bytes, a huge canvas
        dims = rng.choice([(40000, 40000), (65535, 65535), (65535, 8)])
        return kind, jpeg(8, 8, 3, progressive=True, declared=dims, extra_scans=rng.choice([0, 20]))
    if kind == "zero-sof":
        return kind, jpeg(w, h, 3, declared=(rng.choice([0, w]), 0))
    data = jpeg(w, h, rng.choice([1, 3]), progressive=rng.random() < 0.3)
    if kind == "truncated":
        return kind, truncate(rng, data)
    if kind == "bitflip":
        return kind, bitflip(rng, data, rng.choice([1, 2, 8, 32]))
    if kind == "segment-length":
        segs = jpeg_segments(data)
        off, _, _ = rng.choice(segs)
        d = bytearray(data)
        struct.pack_into(">H", d, off + 2, rng.choice([0, 1, 2, 3, 0xFFFF, len(data)]))
        return kind, bytes(d)
    if kind == "trailing-garbage":
        return kind, data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == "no-eoi":
        return kind, data[:-2]
    return kind, data


def mutated_png(rng):
    """(name, bytes) of one PNG, valid or damaged in one or two ways."""
    w, h = rng.choice([(8, 8), (13, 7), (32, 32), (1, 1)])
    ct = rng.choice([0, 2, 3, 4, 6])
    depth = 8 if ct != 0 else rng.choice([1, 8, 16])
    if ct in (2, 6) and rng.random() < 0.3:
        depth = 16
    kind = rng.choice(["valid", "huge-ihdr", "zero-ihdr", "bad-crc", "truncated-idat",
                       "truncated", "bitflip", "interlaced", "bad-depth", "big-chunk-length"])
    if kind == "huge-ihdr":
        dims = (rng.choice([0x7FFFFFFF, 1000000, 65535, w]), rng.choice([0x7FFFFFFF, 1000000, 65535, h]))
        return kind, png(w, h, ct, depth, declared=dims)
    if kind == "zero-ihdr":
        return kind, png(w, h, ct, depth, declared=(0, rng.choice([0, h])))
    if kind == "bad-crc":
        return kind, png(w, h, ct, depth, bad_crc=True)
    if kind == "truncated-idat":
        return kind, png(w, h, ct, depth, idat_cut=rng.randrange(0, 20))
    if kind == "interlaced":
        return kind, png(w, h, ct, depth, interlace=1)
    if kind == "bad-depth":
        return kind, png(w, h, ct, rng.choice([3, 5, 32, 0]))
    data = png(w, h, ct, depth)
    if kind == "truncated":
        return kind, truncate(rng, data)
    if kind == "bitflip":
        return kind, bitflip(rng, data, rng.choice([1, 4, 16]))
    if kind == "big-chunk-length":
        d = bytearray(data)
        struct.pack_into(">I", d, 33, rng.choice([0x7FFFFFFF, 0xFFFFFFFF, 1 << 24]))
        return kind, bytes(d)
    return kind, data
