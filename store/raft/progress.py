"""What a leader knows about each follower's log (etcd's tracker/progress.go).

PROBE: the leader does not know where the follower's log matches; it sends one
APPEND at a time and waits for the answer (or the next heartbeat response).
REPLICATE: the follower is in sync; the leader pipelines APPENDs optimistically,
at most ``max_inflight`` un-acked.
SNAPSHOT: the follower needs entries the leader has compacted; a snapshot is
in flight and nothing else is sent until it is acknowledged (or times out).
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum


class ProgressState(IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class Progress:
    __slots__ = (
        "inflights",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "snapshot_sent_at",
        "state",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.recent_active = False
        self.pending_snapshot = 0
        self.snapshot_sent_at = 0
        # The last index of each un-acked APPEND, oldest first (REPLICATE only).
        self.inflights: deque[int] = deque()

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.clear()

    def become_snapshot(self, index: int, now: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.next = index + 1
        self.snapshot_sent_at = now
        self.probe_sent = False
        self.inflights.clear()

    def is_paused(self, max_inflight: int) -> bool:
        state = self.state
        if state == ProgressState.REPLICATE:
            return len(self.inflights) >= max_inflight
        if state == ProgressState.PROBE:
            return self.probe_sent
        return True

    def sent_append(self, last: int, count: int) -> None:
        """An APPEND of ``count`` entries ending at ``last`` went out."""
        if self.state == ProgressState.REPLICATE:
            if count:
                self.next = last + 1
                self.inflights.append(last)
        else:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower matches up to ``index``; False if that is not news."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        if index + 1 > self.next:
            self.next = index + 1
        return updated

    def free_to(self, index: int) -> None:
        inflights = self.inflights
        while inflights and inflights[0] <= index:
            inflights.popleft()

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an APPEND whose previous index was ``rejected``.

        False when the rejection is stale (it answers an APPEND sent before the
        leader learnt better).
        """
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1, 1)
        self.probe_sent = False
        return True
