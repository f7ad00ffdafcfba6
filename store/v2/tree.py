"""The store's internal tree nodes and the queue of keys with a TTL."""

from __future__ import annotations

import heapq


class Node:
    """A file (``children is None``) or a directory. ``expire_us == 0``: permanent.

    A node keeps its own name, not its path: a path per node would cost memory
    quadratic in the depth of a key (a 32,000-level key once took 1 GB).
    """

    __slots__ = ("alive", "children", "created", "expire_us", "modified", "name", "parent", "value")

    def __init__(
        self,
        name: str,
        created: int,
        modified: int,
        expire_us: int,
        value: str,
        children: dict[str, Node] | None,
        parent: Node | None,
    ) -> None:
        self.name = name
        self.created = created
        self.modified = modified
        self.expire_us = expire_us
        self.value = value
        self.children = children
        self.parent = parent
        self.alive = True

    @property
    def path(self) -> str:
        names = []
        n: Node | None = self
        while n is not None and n.parent is not None:
            names.append(n.name)
            n = n.parent
        names.reverse()
        return "/" + "/".join(names)

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    def subtree(self) -> list[Node]:
        """This node and everything below it, parents before children."""
        out = [self]
        i = 0
        while i < len(out):
            ch = out[i].children
            if ch:
                out.extend(ch.values())
            i += 1
        return out


class TTLQueue:
    """Nodes by expiry time, then path (a total order: every replica expires alike).

    Entries go stale when a node is removed or its TTL changes; they are skipped
    when they reach the top, and the heap is rebuilt when stale ones dominate.
    """

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str, int, Node]] = []
        self._seq = 0
        self._live: dict[int, Node] = {}  # id(node) -> node, for nodes with a TTL

    def __len__(self) -> int:
        return len(self._live)

    def push(self, n: Node) -> None:
        self._seq += 1
        self._live[id(n)] = n
        heapq.heappush(self._heap, (n.expire_us, n.path, self._seq, n))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._rebuild()

    def discard(self, n: Node) -> None:
        self._live.pop(id(n), None)

    def top(self) -> Node | None:
        """The live node that expires first, if any."""
        heap = self._heap
        while heap:
            exp, _, _, n = heap[0]
            if n.alive and n.expire_us == exp and id(n) in self._live:
                return n
            heapq.heappop(heap)
        return None

    def _rebuild(self) -> None:
        self._heap = [(n.expire_us, n.path, i, n) for i, n in enumerate(self._live.values())]
        self._seq = len(self._heap)
        heapq.heapify(self._heap)
