"""The leader's pending read-index requests (etcd's read_only.go, ReadOnlySafe).

A request records the commit index when it arrived; it may be served once a
majority has acknowledged a heartbeat carrying its context (or a later one's:
an acknowledgement of a later context confirms leadership after every earlier
request arrived).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReadRequest:
    context: bytes
    index: int  # the leader's commit index when the request arrived
    frm: int  # who asked: the leader itself, or a follower to answer
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    __slots__ = ("pending", "queue")

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadRequest] = {}
        self.queue: deque[bytes] = deque()

    def add(self, context: bytes, index: int, frm: int, leader: int) -> bool:
        """Record a request, acknowledged by the leader itself; False if a duplicate."""
        if context in self.pending:
            return False
        self.pending[context] = ReadRequest(context, index, frm, {leader})
        self.queue.append(context)
        return True

    def ack(self, context: bytes, frm: int) -> int:
        """Count ``frm``'s acknowledgement; the number of acks so far (0: unknown)."""
        req = self.pending.get(context)
        if req is None:
            return 0
        req.acks.add(frm)
        return len(req.acks)

    def release(self, context: bytes) -> list[ReadRequest]:
        """Remove and return every request up to and including ``context``."""
        if context not in self.pending:
            return []
        out = []
        while self.queue:
            ctx = self.queue.popleft()
            out.append(self.pending.pop(ctx))
            if ctx == context:
                break
        return out

    def last_context(self) -> bytes:
        return self.queue[-1] if self.queue else b""

    def reset(self) -> list[ReadRequest]:
        """Forget (and return) everything pending: leadership was lost."""
        out = [self.pending[ctx] for ctx in self.queue]
        self.pending.clear()
        self.queue.clear()
        return out
