"""A member's snapshot: its v2 store and its v3 state in one blob.

    b"splitbrain-snapshot v2+v3\\n" + <v2 length, 16 hex digits> + v2 bytes + v3 bytes

A snapshot without the header (written before the v3 API) is the v2 store
alone, and loads with an empty v3 state.
"""

from __future__ import annotations

from store.v2.store import V2Store
from store.v3 import snapshot as v3snap
from store.v3.state import V3Store

MAGIC = b"splitbrain-snapshot v2+v3\n"


def dump(v2: V2Store, v3: V3Store) -> bytes:
    a = v2.snapshot()
    return b"".join((MAGIC, b"%016x" % len(a), a, v3snap.dump(v3)))


def load(data: bytes) -> tuple[V2Store, V3Store]:
    if not data.startswith(MAGIC):
        return V2Store.restore(data), V3Store()
    at = len(MAGIC)
    n = int(data[at : at + 16], 16)
    start = at + 16
    return V2Store.restore(data[start : start + n]), v3snap.load(data[start + n :])
