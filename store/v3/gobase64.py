"""Go's base64.StdEncoding.Decode, with its error offsets ("illegal base64 data at
input byte N"): the gateway answers bad base64 with Go's message."""

from __future__ import annotations

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_MAP = [0xFF] * 256
for _i, _c in enumerate(_ALPHABET):
    _MAP[_c] = _i
_NL = (0x0A, 0x0D)


class CorruptInput(ValueError):
    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def decode(src: bytes) -> bytes:
    out = bytearray()
    si = 0
    n = len(src)
    while True:
        dbuf = [0, 0, 0, 0]
        dlen = 4
        j = 0
        err: CorruptInput | None = None
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise CorruptInput(si - j)
            c = src[si]
            si += 1
            v = _MAP[c]
            if v != 0xFF:
                dbuf[j] = v
                j += 1
                continue
            if c in _NL:
                continue
            if c != 0x3D:  # '='
                raise CorruptInput(si - 1)
            if j in (0, 1):
                raise CorruptInput(si - 1)
            if j == 2:
                while si < n and src[si] in _NL:
                    si += 1
                if si == n:
                    raise CorruptInput(n)
                if src[si] != 0x3D:
                    raise CorruptInput(si - 1)
                si += 1
            while si < n and src[si] in _NL:
                si += 1
            if si < n:
                err = CorruptInput(si)
            dlen = j
            break
        val = dbuf[0] << 18 | dbuf[1] << 12 | dbuf[2] << 6 | dbuf[3]
        out += bytes(((val >> 16) & 0xFF, (val >> 8) & 0xFF, val & 0xFF))[: dlen - 1]
        if err is not None:
            raise err
        if dlen < 4:
            return bytes(out)
