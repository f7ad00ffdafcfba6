"""The simulated network: it drops, delays, duplicates and reorders messages, and
partitions nodes (both ways or one way). All randomness comes from one seeded
generator, so a run replays exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass

from store.raft.types import Message


@dataclass(frozen=True, slots=True)
class Faults:
    """How hostile a run is. Times are virtual milliseconds."""

    drop: float = 0.03  # probability a message is lost
    duplicate: float = 0.03  # probability a message arrives twice
    delay: tuple[int, int] = (1, 4)  # usual latency
    slow: float = 0.04  # probability of a long latency (reorders messages)
    slow_delay: tuple[int, int] = (10, 120)
    partition_every: int = 700  # mean time between partition changes; 0: never
    partition_for: tuple[int, int] = (100, 1500)
    crash_every: int = 1200  # mean time between crashes; 0: never
    down_for: tuple[int, int] = (20, 600)
    transfer_every: int = 2000  # mean time between leadership transfers; 0: never
    disk_delay: tuple[int, int] = (0, 2)  # from ready() to persisted
    slow_disk: float = 0.02  # probability of a slow write (an fsync stall)
    slow_disk_delay: tuple[int, int] = (5, 60)
    power_loss_every: int = 4000  # mean time between crashes of every node at once; 0: never
    # Probability that a node dies with a write in flight (after the plan's early
    # sends, before its fsync).
    crash_before_fsync: float = 0.002


PRESETS: dict[str, Faults] = {
    "none": Faults(
        drop=0.0,
        duplicate=0.0,
        delay=(1, 2),
        slow=0.0,
        partition_every=0,
        crash_every=0,
        transfer_every=0,
        disk_delay=(0, 0),
        slow_disk=0.0,
        power_loss_every=0,
        crash_before_fsync=0.0,
    ),
    "default": Faults(),
    "heavy": Faults(
        drop=0.15,
        duplicate=0.1,
        delay=(1, 8),
        slow=0.1,
        slow_delay=(10, 300),
        partition_every=300,
        partition_for=(50, 1000),
        crash_every=500,
        down_for=(10, 400),
        transfer_every=800,
        power_loss_every=2500,
    ),
}


class Network:
    __slots__ = ("blocked", "delivered", "dropped", "duplicated", "faults", "rng", "sent")

    def __init__(self, rng: random.Random, faults: Faults) -> None:
        self.rng = rng
        self.faults = faults
        self.blocked: set[tuple[int, int]] = set()  # (from, to) pairs that cannot talk
        self.sent = 0
        self.delivered = 0
        self.dropped = 0
        self.duplicated = 0

    def route(self, m: Message) -> list[int]:
        """The latencies at which ``m`` arrives: none if lost, two if duplicated."""
        self.sent += 1
        f = self.faults
        rng = self.rng
        if (m.frm, m.to) in self.blocked or rng.random() < f.drop:
            self.dropped += 1
            return []
        copies = 2 if rng.random() < f.duplicate else 1
        if copies == 2:
            self.duplicated += 1
        out = []
        for _ in range(copies):
            lo, hi = f.slow_delay if rng.random() < f.slow else f.delay
            out.append(rng.randint(lo, hi))
        return out

    def can_deliver(self, m: Message) -> bool:
        """A message in flight when a partition starts is lost too."""
        if (m.frm, m.to) in self.blocked:
            self.dropped += 1
            return False
        self.delivered += 1
        return True

    def partition(self, nodes: list[int]) -> str:
        """Cut the network in a random way; a description for the log."""
        rng = self.rng
        self.blocked.clear()
        mode = rng.randrange(3)
        if mode == 0:  # two sides
            side = set(rng.sample(nodes, rng.randint(1, len(nodes) // 2)))
            for a in nodes:
                for b in nodes:
                    if (a in side) != (b in side):
                        self.blocked.add((a, b))
            return f"split {sorted(side)} from the rest"
        if mode == 1:  # one node alone
            lone = rng.choice(nodes)
            for b in nodes:
                if b != lone:
                    self.blocked.update(((lone, b), (b, lone)))
            return f"isolate {lone}"
        pairs = [(a, b) for a in nodes for b in nodes if a != b]
        cut = rng.sample(pairs, rng.randint(1, len(pairs) // 2))
        self.blocked.update(cut)
        return f"one-way cuts {sorted(cut)}"

    def heal(self) -> None:
        self.blocked.clear()
