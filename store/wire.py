"""The peer protocol's binary encoding of Raft messages.

A connection starts with one hello frame and then carries message frames. Every
frame is ``u32 length`` (little-endian) followed by that many bytes. Format in
docs/store.md ("Peer protocol").
"""

from __future__ import annotations

import struct

from store.raft.types import Entry, EntryType, Message, MsgType, Snapshot, SnapshotMeta

MAGIC = b"SBRF"
VERSION = 1
MAX_FRAME = 64 << 20

_LEN = struct.Struct("<I")
_HELLO = struct.Struct("<4sHQI")  # magic, version, cluster id, sender raft id
# type, to, frm, term, log_term, index, commit, reject, reject_hint, hint_term,
# number of entries, context length, has snapshot
_HEAD = struct.Struct("<BIIQQQQBQQIIB")
_ENTRY = struct.Struct("<QQBI")
_SNAP = struct.Struct("<QQIQ")  # index, term, number of voters, data length
_VOTER = struct.Struct("<I")
# Enum lookups by value: calling MsgType(x) goes through EnumType.__call__, a Python
# function, for every message and entry.
_MSG_TYPES = {int(t): t for t in MsgType}
_ENTRY_TYPES = {int(t): t for t in EntryType}


class WireError(ValueError):
    """A frame that does not decode: the connection that sent it is closed."""


def frame(payload: bytes | bytearray) -> bytes:
    return _LEN.pack(len(payload)) + payload


def encode_hello(cluster_id: int, sender: int, client_urls: tuple[str, ...] = ()) -> bytes:
    urls = ",".join(client_urls).encode()
    return frame(_HELLO.pack(MAGIC, VERSION, cluster_id, sender) + urls)


def decode_hello(payload: bytes) -> tuple[int, int, tuple[str, ...]]:
    """(cluster id, sender's raft id, sender's advertised client URLs)."""
    if len(payload) < _HELLO.size:
        raise WireError(f"hello frame of {len(payload)} bytes, expected {_HELLO.size} or more")
    magic, version, cluster_id, sender = _HELLO.unpack_from(payload)
    if magic != MAGIC:
        raise WireError(f"not a splitbrain peer (magic {magic!r})")
    if version != VERSION:
        raise WireError(f"peer protocol version {version}, this node speaks {VERSION}")
    try:
        urls = payload[_HELLO.size :].decode()
    except UnicodeDecodeError:
        raise WireError("client URLs in the hello are not UTF-8") from None
    return cluster_id, sender, tuple(u for u in urls.split(",") if u)


def encode(m: Message) -> bytes:
    """A whole frame (length prefix included) for one message."""
    snap = m.snapshot
    out = bytearray(_LEN.size)
    out += _HEAD.pack(
        m.type, m.to, m.frm, m.term, m.log_term, m.index, m.commit, m.reject,
        m.reject_hint, m.hint_term, len(m.entries), len(m.context), snap is not None,
    )  # fmt: skip
    out += m.context
    pack_entry = _ENTRY.pack
    for e in m.entries:
        out += pack_entry(e.term, e.index, e.type, len(e.data))
        out += e.data
    if snap is not None:
        voters = snap.meta.voters
        out += _SNAP.pack(snap.meta.index, snap.meta.term, len(voters), len(snap.data))
        for v in voters:
            out += _VOTER.pack(v)
        out += snap.data
    _LEN.pack_into(out, 0, len(out) - _LEN.size)
    return bytes(out)


def decode(payload: bytes) -> Message:
    try:
        return _decode(memoryview(payload))
    except (struct.error, ValueError) as e:
        raise WireError(f"bad message frame: {e}") from None


def _decode(buf: memoryview) -> Message:
    (
        mtype, to, frm, term, log_term, index, commit, reject, reject_hint, hint_term,
        n_entries, ctx_len, has_snap,
    ) = _HEAD.unpack_from(buf, 0)  # fmt: skip
    msg_type = _MSG_TYPES.get(mtype)
    if msg_type is None:
        raise WireError(f"unknown message type {mtype}")
    pos = _HEAD.size
    context = bytes(buf[pos : pos + ctx_len])
    pos += ctx_len
    entries = []
    unpack_entry = _ENTRY.unpack_from
    esize = _ENTRY.size
    entry_types = _ENTRY_TYPES
    for _ in range(n_entries):
        eterm, eindex, etype, dlen = unpack_entry(buf, pos)
        pos += esize
        data = bytes(buf[pos : pos + dlen])
        if len(data) != dlen:
            raise WireError("entry data cut short")
        pos += dlen
        entry_type = entry_types.get(etype)
        if entry_type is None:
            raise WireError(f"unknown entry type {etype}")
        entries.append(Entry(eterm, eindex, entry_type, data))
    snapshot = None
    if has_snap:
        sindex, sterm, n_voters, dlen = _SNAP.unpack_from(buf, pos)
        pos += _SNAP.size
        voters = tuple(_VOTER.unpack_from(buf, pos + 4 * i)[0] for i in range(n_voters))
        pos += 4 * n_voters
        data = bytes(buf[pos : pos + dlen])
        if len(data) != dlen:
            raise WireError("snapshot data cut short")
        pos += dlen
        snapshot = Snapshot(SnapshotMeta(sindex, sterm, voters), data)
    if pos != len(buf):
        raise WireError(f"{len(buf) - pos} trailing bytes after the message")
    return Message(
        msg_type, to, frm, term, log_term, index, tuple(entries), commit, bool(reject),
        reject_hint, hint_term, context, snapshot,
    )  # fmt: skip


class FrameReader:
    """Splits a byte stream into frame payloads."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (length,) = _LEN.unpack_from(buf, pos)
            if length > MAX_FRAME:
                raise WireError(f"frame of {length} bytes is over the {MAX_FRAME} limit")
            if n - pos - 4 < length:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return frames
