"""The peer protocol's frames: round trips, and bad frames rejected cleanly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import wire
from store.raft.types import Entry, EntryType, Message, MsgType, Snapshot, SnapshotMeta

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
entries = st.lists(
    st.builds(Entry, u64, u64, st.sampled_from(EntryType), st.binary(max_size=64)), max_size=5
)
snapshots = st.none() | st.builds(
    Snapshot, st.builds(SnapshotMeta, u64, u64, st.lists(u32, max_size=5).map(tuple)), st.binary()
)
messages = st.builds(
    Message,
    st.sampled_from(MsgType),
    u32,
    u32,
    u64,
    u64,
    u64,
    entries.map(tuple),
    u64,
    st.booleans(),
    u64,
    u64,
    st.binary(max_size=16),
    snapshots,
)


@given(st.lists(messages, min_size=1, max_size=4), st.integers(1, 50))
def test_messages_survive_encoding_and_any_split_of_the_stream(msgs, chunk):
    stream = b"".join(wire.encode(m) for m in msgs)
    reader = wire.FrameReader()
    payloads = []
    for i in range(0, len(stream), chunk):
        payloads += reader.feed(stream[i : i + chunk])
    assert [wire.decode(p) for p in payloads] == msgs


def test_hello_carries_cluster_sender_and_client_urls():
    frame = wire.encode_hello(0xABC, 3, ("http://127.0.0.1:2379", "http://10.0.0.1:2379"))
    [payload] = wire.FrameReader().feed(frame)
    assert wire.decode_hello(payload) == (
        0xABC,
        3,
        ("http://127.0.0.1:2379", "http://10.0.0.1:2379"),
    )


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a splitbrain peer"),
        (b"SBRF\x02\x00" + bytes(12), "version 2"),
        (b"SB", "expected"),
    ],
)
def test_bad_hellos_are_refused_with_a_reason(payload, why):
    with pytest.raises(wire.WireError, match=why):
        wire.decode_hello(payload)


def test_truncated_and_padded_messages_are_refused():
    m = Message(MsgType.APPEND, 2, 1, 3, 2, 5, (Entry(3, 6, EntryType.NORMAL, b"x" * 10),), 4)
    payload = wire.encode(m)[4:]
    for cut in range(len(payload)):
        with pytest.raises(wire.WireError):
            wire.decode(payload[:cut])
    with pytest.raises(wire.WireError, match="trailing"):
        wire.decode(payload + b"\x00")
    with pytest.raises(wire.WireError):
        wire.decode(b"\xff" + payload[1:])  # no such message type


def test_a_frame_over_the_limit_is_refused_before_it_is_buffered():
    with pytest.raises(wire.WireError, match="limit"):
        wire.FrameReader().feed((wire.MAX_FRAME + 1).to_bytes(4, "little"))
