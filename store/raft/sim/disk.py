"""A simulated node's disk: exactly what the driver persisted before advance().

A crash keeps this and loses everything else.
"""

from __future__ import annotations

from store.raft.plan import Durable
from store.raft.types import Entry, HardState, Ready, Restored, Snapshot


class DiskError(Exception):
    """The core asked for a write that cannot be laid out (a contract breach)."""


class Disk:
    __slots__ = ("entries", "hard_state", "snapshot")

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []  # contiguous, right after the snapshot

    @property
    def snap_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    def term(self, index: int) -> int | None:
        i = index - self.snap_index - 1
        if i == -1:
            return self.snapshot.meta.term if self.snapshot else 0
        if 0 <= i < len(self.entries):
            return self.entries[i].term
        return None

    def save(self, rd: Ready) -> None:
        """Persist a Ready: snapshot (which replaces the log), entries, hard state."""
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.entries:
            first = rd.entries[0].index
            at = first - self.snap_index - 1
            if at < 0 or at > len(self.entries):
                raise DiskError(
                    f"entries from {first} do not fit a log of "
                    f"{self.snap_index + 1}..{self.snap_index + len(self.entries)}"
                )
            del self.entries[at:]
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state

    def compact(self, snap: Snapshot) -> None:
        """The driver took a snapshot: keep it, drop the entries it covers."""
        if snap.meta.index <= self.snap_index:
            return
        drop = snap.meta.index - self.snap_index
        if drop > len(self.entries):
            raise DiskError(f"snapshot at {snap.meta.index} is past the stored log")
        del self.entries[:drop]
        self.snapshot = snap

    def restored(self) -> Restored:
        return Restored(self.hard_state, self.snapshot, tuple(self.entries))

    def durable(self) -> Durable:
        hs = self.hard_state
        return Durable(self.snap_index + len(self.entries), hs.term, hs.vote)
