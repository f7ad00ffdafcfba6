"""The v3 state in a snapshot: revision, compacted revision and every key's history.

    {"v": 1, "rev": R, "compacted": C,
     "keys": [[key_b64, [[main, null | [create, mod, version, value_b64, lease]], ...]], ...]}
"""

from __future__ import annotations

import base64
import json
from typing import Any

from store.v3.messages import KeyValue
from store.v3.state import V3Store

VERSION = 1
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def dump(store: V3Store) -> bytes:
    b64 = base64.b64encode
    keys = []
    for key, hist in store.kv.entries():
        keys.append([
            b64(key).decode(),
            [[main, None if kv is None else
              [kv.create_revision, kv.mod_revision, kv.version, b64(kv.value).decode(), kv.lease]]
             for main, kv in hist],
        ])  # fmt: skip
    doc = {"v": VERSION, "rev": store.kv.revision, "compacted": store.kv.compact_revision,
           "keys": keys}
    return _dumps(doc).encode()


def load(data: bytes) -> V3Store:
    doc: dict[str, Any] = json.loads(data)
    if doc.get("v") != VERSION:
        raise ValueError(f"unknown v3 snapshot version {doc.get('v')!r}")
    b64d = base64.b64decode
    entries = []
    for key_b64, hist in doc["keys"]:
        key = b64d(key_b64)
        entries.append((key, [
            (main, None if kv is None else KeyValue(key, kv[0], kv[1], kv[2], b64d(kv[3]), kv[4]))
            for main, kv in hist
        ]))  # fmt: skip
    store = V3Store()
    store.kv.load(doc["rev"], doc["compacted"], entries)
    return store
