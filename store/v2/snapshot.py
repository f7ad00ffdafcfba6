"""The store's snapshot: one JSON document, written and read without recursion.

    {"v": 2, "index": I, "now": microseconds,
     "nodes": [[parent, name, created, modified, expire_us, value or null for a dir], ...],
     "history": [[action, node, prevNode or null, etcdIndex, refresh], ...],
     "writes": [the replicated stats counters]}

Nodes are listed parents first, children in creation order, the root left out;
``parent`` is the parent's position in that list plus one (0: the root), so the
document grows with the number of nodes, not with the sum of their path lengths
(version 1 listed full paths, and still loads). A node view is [key, value, dir,
expiration_us, ttl, modified, created]. Local state (watchers, read counters) is
not part of it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from store.v2.event import Event, NodeView
from store.v2.paths import split
from store.v2.stats import WRITE_FIELDS
from store.v2.tree import Node

if TYPE_CHECKING:
    from store.v2.store import V2Store

VERSION = 2

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _view_out(v: NodeView | None) -> list[Any] | None:
    if v is None:
        return None
    if v.nodes:
        raise ValueError("history events never hold child nodes")
    return [v.key, v.value, v.dir, v.expiration_us, v.ttl, v.modified_index, v.created_index]


def _view_in(a: list[Any] | None) -> NodeView | None:
    if a is None:
        return None
    key, value, is_dir, exp, ttl, modified, created = a
    return NodeView(key, value, is_dir, exp, ttl, None, modified, created)


def dump(s: V2Store) -> bytes:
    nodes = []
    ordinal = {id(s.root): 0}
    for i, n in enumerate(s.root.subtree()[1:], 1):
        assert n.parent is not None
        ordinal[id(n)] = i
        value = None if n.children is not None else n.value
        nodes.append([ordinal[id(n.parent)], n.name, n.created, n.modified, n.expire_us, value])
    history = [
        [e.action, _view_out(e.node), _view_out(e.prev_node), e.etcd_index, e.refresh]
        for e in s.hub.history.events
    ]
    doc = {
        "v": VERSION,
        "index": s.index,
        "now": s.now_us,
        "nodes": nodes,
        "history": history,
        "writes": s.stats.writes,
    }
    return _dumps(doc).encode()


def load(s: V2Store, data: bytes) -> V2Store:
    """Fill the fresh store ``s`` from ``data``."""
    doc = json.loads(data)
    if doc.get("v") not in (1, VERSION):
        raise ValueError(f"unknown v2 store snapshot version {doc.get('v')!r}")
    s.index = doc["index"]
    s.now_us = doc["now"]
    by_ordinal = [s.root]
    by_path = {"/": s.root}
    for row in doc["nodes"]:
        if doc["v"] == 1:
            path, created, modified, expire_us, value = row
            parent_path, name = split(path)
            parent = by_path[parent_path]
        else:
            at, name, created, modified, expire_us, value = row
            parent = by_ordinal[at]
        if parent.children is None:
            raise ValueError("bad v2 store snapshot: a node under a file")
        if value is None:
            n = Node(name, created, modified, expire_us, "", {}, parent)
            if doc["v"] == 1:
                by_path[path] = n
        else:
            n = Node(name, created, modified, expire_us, value, None, parent)
        by_ordinal.append(n)
        parent.children[name] = n
        if expire_us:
            s.ttl.push(n)
    history = s.hub.history
    for action, node, prev, etcd_index, refresh in doc["history"]:
        view = _view_in(node)
        if view is None:
            raise ValueError("a history event without a node")
        history.add(Event(action, view, _view_in(prev), etcd_index, refresh))
    writes = doc["writes"]
    if len(writes) != len(WRITE_FIELDS):
        raise ValueError("bad stats in v2 store snapshot")
    s.stats.writes = list(writes)
    return s
